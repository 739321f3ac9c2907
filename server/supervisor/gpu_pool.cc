#include "server/supervisor/gpu_pool.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "proto/coding.h"
#include "proto/frame.h"
#include "proto/handshake.h"
#include "server/supervisor/control.h"
#include "server/supervisor/supervisor.h"

namespace rgpu::server {
namespace {

constexpr int kMaxFastFailures = 3;
constexpr auto kFastFailure = std::chrono::seconds(5);
constexpr auto kRetryDelay = std::chrono::seconds(2);
constexpr uint16_t kEventQueuePosition = 3;

double Seconds(GpuPool::Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

GpuPool::GpuPool(const SupervisorOptions& options, std::vector<int> gpus) : options_(options) {
  for (int i : gpus) {
    Gpu g;
    g.index = i;
    g.free_since = Clock::now();
    gpus_.push_back(g);
  }
}

std::string GpuPool::PoolList() const {
  std::string out;
  for (const Gpu& g : gpus_) out += (out.empty() ? "" : ",") + std::to_string(g.index);
  return out;
}

int GpuPool::Usable() const {
  int n = 0;
  for (const Gpu& g : gpus_) n += g.out ? 0 : 1;
  return n;
}

Result<int> GpuPool::CheckRequest(uint32_t wanted) const {
  const int usable = Usable();
  if (usable == 0) return Status::Invalid("this server has no working GPU");
  if (wanted == kAllGpus) return usable;
  if (wanted == 0 || wanted > 64)
    return Status::Invalid("a session of " + std::to_string(wanted) + " GPUs (RGPU_GPUS) is not possible: 1..64 or all");
  if (static_cast<int>(wanted) > usable)
    return Status::Invalid("the session asks for " + std::to_string(wanted) + " GPUs (RGPU_GPUS) but this server has " +
                           std::to_string(usable));
  return static_cast<int>(wanted);
}

std::vector<int> GpuPool::FreeGpus(int n) const {
  std::vector<int> out;
  for (size_t i = 0; i < gpus_.size() && static_cast<int>(out.size()) < n; ++i)
    if (gpus_[i].holders.empty() && gpus_[i].warm_ready && !gpus_[i].out) out.push_back(static_cast<int>(i));
  return out;
}

void GpuPool::Refuse(Waiting& w, const std::string& why) {
  RGPU_LOG_WARN("%s: session %llu refused: %s", w.peer.c_str(), (unsigned long long)w.session_id, why.c_str());
  std::vector<uint8_t> frame = proto::EncodeHelloReplyFrame({proto::HelloStatus::kNoCapacity, why, 0});
  if (SendToWaiting(w, frame) && w.tls != nullptr) (void)w.tls->Close(0);  // tiny; best effort
  close(w.fd);
  w.fd = -1;
  w.tls.reset();
}

bool GpuPool::SendToWaiting(Waiting& w, const std::vector<uint8_t>& frame) {
  if (w.tls != nullptr) return w.tls->WriteAll(frame.data(), frame.size()).ok();  // non-blocking (fed mode)
  ssize_t n = send(w.fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  return n == static_cast<ssize_t>(frame.size());
}

Status GpuPool::HandOver(Waiting& w, std::string* secret) {
  *secret = tls::RandomBytes(proto::kHandOverSecretSize);
  if (secret->empty()) return Status::Internal("TLS: no random bytes for the hand-over secret");
  std::vector<uint8_t> frame = proto::EncodeHandOverFrame(*secret);
  RGPU_RETURN_IF_ERROR(w.tls->WriteAll(frame.data(), frame.size()));
  // close_notify: the client reads the end of our session and starts its
  // own with the worker; we send nothing after it.
  RGPU_RETURN_IF_ERROR(w.tls->Close(0));
  w.tls.reset();
  return {};
}

GpuPool::~GpuPool() { StopAll(); }

void GpuPool::Start() {
  for (Gpu& g : gpus_) SpawnWarm(g);
}

void GpuPool::SpawnWarm(Gpu& g) {
  int ctl[2];
  if (Status st = ControlPair(ctl); !st.ok()) {
    RGPU_LOG_ERROR("gpu %d: %s", g.index, st.message().c_str());
    return;
  }
  // Every worker sees the whole pool (CUDA_VISIBLE_DEVICES / --sim-indices
  // list it), so its backend ordinal for a GPU is the GPU's position in
  // gpus_; its own GPU, where the warm context is made, is --device.
  std::string pool = PoolList();
  std::vector<std::string> args = {options_.self_exe, "--control-fd", std::to_string(ctl[1]),
                                   "--backend", options_.backend,
                                   "--sim-gpus", std::to_string(gpus_.size()), "--sim-indices", pool,
                                   "--device", std::to_string(&g - gpus_.data())};
  if (!options_.driver_path.empty()) args.insert(args.end(), {"--driver", options_.driver_path});
  if (!options_.profile_path.empty()) args.insert(args.end(), {"--profile", options_.profile_path});
  if (options_.paranoid_wipe) args.push_back("--paranoid-wipe");
  args.insert(args.end(), {"--teardown-grace", std::to_string(options_.teardown_grace_s)});
  if (!options_.tls_cert.empty()) args.insert(args.end(), {"--tls-cert", options_.tls_cert, "--tls-key", options_.tls_key});
  args.insert(args.end(), {"--detach-idle", options_.detach_idle, "--idle-timeout", std::to_string(options_.idle_timeout_s)});
  // Per-session limits are the worker's to enforce.
  args.insert(args.end(), {"--max-mem", std::to_string(options_.max_mem), "--max-pending-bytes",
                           std::to_string(options_.max_pending_bytes)});
  args.insert(args.end(), {"--sandbox", options_.sandbox, "--sandbox-user", options_.sandbox_user});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string visible = pool;
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    RGPU_LOG_ERROR("gpu %d: fork: %s", g.index, strerror(errno));
    close(ctl[0]);
    close(ctl[1]);
    return;
  }
  if (pid == 0) {
    // Only async-signal-safe calls until exec. The worker sees the pool's
    // GPUs (and serves only those its session leases), and must not outlive
    // the supervisor.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    fcntl(ctl[1], F_SETFD, 0);
    setenv("CUDA_VISIBLE_DEVICES", visible.c_str(), 1);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(ctl[1]);
  g.spawn_at.reset();
  g.warm_pid = pid;
  g.warm_ctl = ctl[0];
  g.warm_ready = false;
  g.warm_started = Clock::now();
}

namespace {
// "user@host pid=N ancestors=a,b,c exe=..." (client/client_state.cc).
std::string HostOf(const std::string& identity) {
  size_t at = identity.find('@'), sp = identity.find(" pid=");
  return at == std::string::npos || sp == std::string::npos || sp < at ? "" : identity.substr(at + 1, sp - at - 1);
}
long Field(const std::string& identity, const char* key) {
  size_t at = identity.find(key);
  return at == std::string::npos ? 0 : atol(identity.c_str() + at + strlen(key));
}
std::vector<long> Ancestors(const std::string& identity) {
  std::vector<long> out;
  size_t at = identity.find(" ancestors=");
  if (at == std::string::npos) return out;
  const char* p = identity.c_str() + at + 11;
  while (*p >= '0' && *p <= '9' && out.size() < 16) {
    char* end = nullptr;
    out.push_back(strtol(p, &end, 10));
    p = *end == ',' ? end + 1 : end;
  }
  return out;
}
}  // namespace

int GpuPool::FamilyGpu(const std::string& identity) const {
  std::string host = HostOf(identity);
  if (host.empty()) return -1;
  std::vector<long> ancestors = Ancestors(identity);
  for (size_t i = 0; i < gpus_.size(); ++i)
    for (const Holder& h : gpus_[i].holders)
      for (long a : ancestors)
        if (h.host == host && h.client_pid == a) return h.gpus.empty() ? static_cast<int>(i) : h.gpus[0];
  return -1;
}

void GpuPool::Admit(int fd, uint64_t session_id, const std::string& identity, const std::string& peer,
                    int gpus, std::unique_ptr<tls::Stream> tls, proto::Codec codec) {
  Waiting w{fd, session_id, identity, peer, Clock::now(), FamilyGpu(identity), gpus < 1 ? 1 : gpus};
  w.tls = std::move(tls);
  w.codec = codec;
  // A helper of a lease holder shares its GPU: it never waits behind others
  // (its parent may be waiting for it).
  if (w.family_gpu >= 0) queue_.push_front(std::move(w));
  else queue_.push_back(std::move(w));
  Dispatch();
  if (!queue_.empty()) TellPositions();
}

void GpuPool::Attach(const std::vector<int>& positions, Waiting w) {
  Gpu& g = gpus_[positions[0]];
  ControlMessage m{ControlKind::kAttach, w.session_id, w.identity, w.fd};
  m.value = static_cast<uint64_t>(w.codec);
  if (w.tls != nullptr) {
    // Before anything is leased: a client that cannot take its hand-over
    // has gone, and the GPU stays free for the next.
    if (Status st = HandOver(w, &m.secret); !st.ok()) {
      RGPU_LOG_INFO("%s: left before its session started: %s", w.peer.c_str(), st.message().c_str());
      close(w.fd);
      return;
    }
  }
  m.gpus = positions;  // the worker's backend ordinals are pool positions
  Status st = SendControl(g.warm_ctl, m);
  close(w.fd);  // the worker has its own copy now
  if (!st.ok()) {
    RGPU_LOG_ERROR("gpu %d: handing session %llu to its worker: %s", g.index,
                   (unsigned long long)w.session_id, st.message().c_str());
    return;  // the worker's exit is handled by OnChildExit
  }
  Holder h{g.warm_pid, g.warm_ctl, w.session_id, w.identity, HostOf(w.identity), Field(w.identity, " pid="),
           Clock::now(), positions};
  // One holder record per leased GPU; only the first has the control channel.
  for (int p : positions) {
    gpus_[p].holders.push_back(h);
    h.ctl = -1;
  }
  g.warm_pid = -1;
  g.warm_ctl = -1;
  g.warm_ready = false;
  ++sessions_served_;
  std::string list;
  for (int p : positions) list += (list.empty() ? "" : ",") + std::to_string(gpus_[p].index);
  RGPU_LOG_INFO("gpu %s: session %llu (%s, %s) after %.1f ms in queue%s", list.c_str(),
                (unsigned long long)w.session_id, w.identity.c_str(), w.peer.c_str(),
                Seconds(Clock::now() - w.since) * 1e3, g.holders.size() > 1 ? ", sharing its parent's lease" : "");
  // The next session's context is created while this one runs.
  if (options_.warm_spawn_delay_s > 0) {
    g.spawn_at = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(options_.warm_spawn_delay_s));
  } else {
    SpawnWarm(g);
  }
}

void GpuPool::SpawnDueWarm() {
  Clock::time_point now = Clock::now();
  for (Gpu& g : gpus_) {
    if (!g.spawn_at || g.warm_pid >= 0 || g.out) continue;
    if (now >= *g.spawn_at || !queue_.empty()) SpawnWarm(g);
  }
}

void GpuPool::Dispatch() {
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (it->reattach_pid > 0) {  // a detached session wants its own GPUs back
      if (!TryReattach(*it)) return;
      it = queue_.erase(it);
      continue;
    }
    std::vector<int> target;
    if (it->family_gpu >= 0) {
      Gpu& g = gpus_[it->family_gpu];
      if (g.holders.empty()) {
        it->family_gpu = -1;  // the parent is gone: an ordinary session now
      } else if (g.warm_ready) {
        // The parent's GPUs, as many as the helper asked for.
        target = g.holders.front().gpus;
        if (target.empty()) target = {it->family_gpu};
        if (static_cast<int>(target.size()) > it->gpus_wanted) target.resize(it->gpus_wanted);
      }
    }
    if (it->family_gpu < 0) {
      if (it->gpus_wanted > Usable()) {  // GPUs left the pool while it waited
        Refuse(*it, "the session asks for " + std::to_string(it->gpus_wanted) + " GPUs but only " +
                        std::to_string(Usable()) + " still work on this server");
        it = queue_.erase(it);
        continue;
      }
      target = FreeGpus(it->gpus_wanted);
      // FIFO: nobody overtakes the head, which keeps the GPUs that free up
      // until it has as many as it asked for.
      if (static_cast<int>(target.size()) < it->gpus_wanted) return;
    }
    if (target.empty()) {
      ++it;
      continue;
    }
    Waiting w = std::move(*it);
    it = queue_.erase(it);
    Attach(target, std::move(w));
  }
}

void GpuPool::MaybeScrub(Gpu& g) {
  if (!g.needs_scrub || !g.holders.empty() || !g.warm_ready || g.warm_ctl < 0) return;
  g.needs_scrub = false;
  g.warm_ready = false;  // not free until the scrub is done (its next kReady)
  if (Status st = SendControl(g.warm_ctl, {ControlKind::kScrub}); !st.ok()) {
    // Its replacement scrubs instead (OnChildExit).
    RGPU_LOG_WARN("gpu %d: cannot ask warm worker %d to scrub: %s", g.index, g.warm_pid, st.message().c_str());
    g.needs_scrub = true;
    if (g.warm_pid > 0) kill(g.warm_pid, SIGKILL);
    return;
  }
  g.scrubbing = true;
  RGPU_LOG_INFO("gpu %d: scrubbing its free memory before the next session", g.index);
}

bool GpuPool::EndLease(pid_t worker_pid, const char* how, bool clean) {
  std::string list;
  const Holder* first = nullptr;
  Holder ended;
  for (Gpu& g : gpus_) {
    for (auto h = g.holders.begin(); h != g.holders.end(); ++h) {
      if (h->worker_pid != worker_pid) continue;
      if (first == nullptr) {
        ended = *h;
        first = &ended;
      }
      if (h->ctl >= 0) close(h->ctl);
      g.holders.erase(h);
      list += (list.empty() ? "" : ",") + std::to_string(g.index);
      if (!clean) g.needs_scrub = true;
      if (g.holders.empty()) g.free_since = Clock::now();
      if (g.warm_pid < 0 && !g.out) SpawnWarm(g);
      MaybeScrub(g);
      break;
    }
  }
  if (first == nullptr) return false;
  RGPU_LOG_INFO("gpu %s: session %llu %s after %.1f s", list.c_str(), (unsigned long long)first->session_id, how,
                Seconds(Clock::now() - first->since));
  return true;
}

void GpuPool::TellPositions() {
  // A session that waits only for a worker to start (a helper sharing its
  // parent's lease, or the head of the queue while enough GPUs are free) is
  // not queued behind anyone: it is told nothing, so its user sees no queue
  // line ("nothing if it never waits").
  size_t free_gpus = 0;
  for (const Gpu& g : gpus_)
    if (g.holders.empty() && !g.out) ++free_gpus;
  int pos = 1;
  for (auto it = queue_.begin(); it != queue_.end(); ++pos) {
    bool behind_nobody = it->family_gpu >= 0 || (pos == 1 && static_cast<size_t>(it->gpus_wanted) <= free_gpus);
    if (it->fd < 0 || behind_nobody) {  // (fd < 0: a reattach, its client is not listening)
      ++it;
      continue;
    }
    std::vector<uint8_t> payload, frame;
    proto::Writer w(&payload);
    w.I32(0);
    w.U32(static_cast<uint32_t>(pos));
    proto::AppendFrame({0, kEventQueuePosition, proto::kEvent, 0}, payload, &frame);
    // Non-blocking and tiny: a client that cannot take 24 bytes is gone.
    if (!SendToWaiting(*it, frame)) {
      RGPU_LOG_INFO("%s: left the queue", it->peer.c_str());
      close(it->fd);
      it = queue_.erase(it);
      continue;
    }
    ++it;
  }
  TellWaiting();
}

void GpuPool::AddPollFds(std::vector<pollfd>* fds) const {
  for (const Gpu& g : gpus_) {
    if (g.warm_ctl >= 0) fds->push_back({g.warm_ctl, POLLIN, 0});
    for (const Holder& h : g.holders)
      if (h.ctl >= 0) fds->push_back({h.ctl, POLLIN, 0});
  }
  for (const Holder& h : detached_)
    if (h.ctl >= 0) fds->push_back({h.ctl, POLLIN, 0});
  for (const Waiting& w : queue_)
    if (w.fd >= 0) fds->push_back({w.fd, POLLIN | POLLRDHUP, 0});
}

void GpuPool::OnPoll(const std::vector<pollfd>& fds) {
  bool changed = false;
  for (const pollfd& p : fds) {
    if (p.revents == 0) continue;
    for (Gpu& g : gpus_) {
      pid_t released = -1, from = -1;
      ControlMessage msg;
      for (auto h = g.holders.begin(); h != g.holders.end(); ++h) {
        if (p.fd != h->ctl) continue;
        ControlMessage& m = msg;
        Status st = ReceiveControl(h->ctl, &m);
        if (st.ok() && m.kind != ControlKind::kReleased) {  // idle detach: gpu_pool_detach.cc
          from = h->worker_pid;
          break;
        }
        close(h->ctl);
        h->ctl = -1;
        // Wiped: the lease ends now, on every GPU of the session; the
        // process finishes exiting on its own. Otherwise the lease ends
        // when the process is reaped.
        if (st.ok() && m.kind == ControlKind::kReleased) released = h->worker_pid;
        break;
      }
      if (released > 0) changed |= EndLease(released, "released", /*clean=*/true);
      if (from > 0) changed |= OnHolderMessage(from, msg);
      if (p.fd != g.warm_ctl) continue;
      ControlMessage m;
      Status st = ReceiveControl(g.warm_ctl, &m);
      if (st.ok() && m.kind == ControlKind::kReady) {
        g.warm_ready = true;
        g.fast_failures = 0;
        if (!m.identity.empty()) g.name = m.identity;  // the worker's device name and memory
        if (m.value != 0) g.total_mem = m.value;
        if (g.scrubbing) {
          g.scrubbing = false;
          RGPU_LOG_INFO("gpu %d: scrubbed; free again", g.index);
        } else {
          RGPU_LOG_INFO("gpu %d: warm worker %d ready in %.1f ms", g.index, g.warm_pid,
                        Seconds(Clock::now() - g.warm_started) * 1e3);
        }
        MaybeScrub(g);
        changed = true;
      } else {
        // It died or spoke nonsense: its exit is reaped in OnChildExit.
        close(g.warm_ctl);
        g.warm_ctl = -1;
        g.warm_ready = false;
        if (g.warm_pid > 0) kill(g.warm_pid, SIGKILL);
      }
    }
    if (OnDetachedPoll(p, &changed)) continue;
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (p.fd != it->fd) continue;
      // A waiting client sends nothing before its session starts: readable
      // means it hung up (or broke the protocol).
      RGPU_LOG_INFO("%s: left the queue", it->peer.c_str());
      close(it->fd);
      queue_.erase(it);
      changed = true;
      break;
    }
  }
  if (changed) {
    Dispatch();
    TellPositions();
  }
}

bool GpuPool::OnChildExit(pid_t pid, int status) {
  std::string how = "ended (worker status " + std::to_string(status) + ")";
  const bool released = DrainDetachedControl(pid);
  // A holder reaped before it said kReleased left its memory unwiped.
  if (released || EndLease(pid, how.c_str(), /*clean=*/false) || ForgetDetached(pid, how.c_str())) {
    Dispatch();
    TellPositions();
    return true;
  }
  for (Gpu& g : gpus_) {
    if (pid == g.warm_pid) {
      if (g.scrubbing) g.needs_scrub = true;  // its replacement scrubs
      g.scrubbing = false;
      if (g.warm_ctl >= 0) close(g.warm_ctl);
      g.warm_ctl = -1;
      g.warm_pid = -1;
      g.warm_ready = false;
      bool fast = Clock::now() - g.warm_started < kFastFailure;
      g.fast_failures = fast ? g.fast_failures + 1 : 0;
      if (g.fast_failures >= kMaxFastFailures) {
        RGPU_LOG_ERROR("gpu %d: warm workers keep failing (status %d); GPU taken out of the pool",
                       g.index, status);
        g.out = true;
        Dispatch();  // refuses queued sessions that now ask for more GPUs than are left
        TellPositions();
      } else {
        RGPU_LOG_WARN("gpu %d: warm worker %d died (status %d); starting another", g.index, pid, status);
        SpawnWarm(g);
      }
      return true;
    }
  }
  return false;
}

void GpuPool::StopAll() {
  for (Gpu& g : gpus_) {
    for (const Holder& h : g.holders) kill(h.worker_pid, SIGTERM);
    if (g.warm_pid > 0) kill(g.warm_pid, SIGTERM);
  }
  for (Gpu& g : gpus_) {
    for (const Holder& h : g.holders) {
      waitpid(h.worker_pid, nullptr, 0);
      if (h.ctl >= 0) close(h.ctl);
    }
    if (g.warm_pid > 0) waitpid(g.warm_pid, nullptr, 0);
    if (g.warm_ctl >= 0) close(g.warm_ctl);
    int index = g.index;
    g = Gpu{};
    g.index = index;
  }
  for (const Holder& h : detached_) kill(h.worker_pid, SIGTERM);
  for (const Holder& h : detached_) {
    waitpid(h.worker_pid, nullptr, 0);
    if (h.ctl >= 0) close(h.ctl);
  }
  detached_.clear();
  for (Waiting& w : queue_)
    if (w.fd >= 0) close(w.fd);
  queue_.clear();
}

size_t GpuPool::sessions() const {
  size_t n = 0;
  for (size_t i = 0; i < gpus_.size(); ++i)
    for (const Holder& h : gpus_[i].holders) n += h.gpus.empty() || h.gpus[0] == static_cast<int>(i) ? 1 : 0;
  return n + detached_.size();
}

}  // namespace rgpu::server
