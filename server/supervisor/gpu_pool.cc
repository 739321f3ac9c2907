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
#include <sstream>

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

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out + "\"";
}

}  // namespace

GpuPool::GpuPool(const SupervisorOptions& options, std::vector<int> gpus) : options_(options) {
  for (int i : gpus) {
    Gpu g;
    g.index = i;
    gpus_.push_back(g);
  }
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
  std::vector<std::string> args = {options_.self_exe, "--control-fd", std::to_string(ctl[1]),
                                   "--backend", options_.backend,
                                   "--sim-gpus", "1", "--sim-index", std::to_string(g.index)};
  if (!options_.driver_path.empty()) args.insert(args.end(), {"--driver", options_.driver_path});
  if (!options_.profile_path.empty()) args.insert(args.end(), {"--profile", options_.profile_path});
  if (options_.paranoid_wipe) args.push_back("--paranoid-wipe");
  args.insert(args.end(), {"--sandbox", options_.sandbox, "--sandbox-user", options_.sandbox_user});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string visible = std::to_string(g.index);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    RGPU_LOG_ERROR("gpu %d: fork: %s", g.index, strerror(errno));
    close(ctl[0]);
    close(ctl[1]);
    return;
  }
  if (pid == 0) {
    // Only async-signal-safe calls until exec. The worker sees exactly its
    // GPU, and must not outlive the supervisor.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    fcntl(ctl[1], F_SETFD, 0);
    setenv("CUDA_VISIBLE_DEVICES", visible.c_str(), 1);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(ctl[1]);
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
        if (h.host == host && h.client_pid == a) return static_cast<int>(i);
  return -1;
}

void GpuPool::Admit(int fd, uint64_t session_id, const std::string& identity, const std::string& peer) {
  Waiting w{fd, session_id, identity, peer, Clock::now(), FamilyGpu(identity)};
  // A helper of a lease holder shares its GPU: it never waits behind others
  // (its parent may be waiting for it).
  if (w.family_gpu >= 0) queue_.push_front(std::move(w));
  else queue_.push_back(std::move(w));
  Dispatch();
  if (!queue_.empty()) TellPositions();
}

void GpuPool::Attach(Gpu& g, Waiting w) {
  ControlMessage m{ControlKind::kAttach, w.session_id, w.identity, w.fd};
  Status st = SendControl(g.warm_ctl, m);
  close(w.fd);  // the worker has its own copy now
  if (!st.ok()) {
    RGPU_LOG_ERROR("gpu %d: handing session %llu to its worker: %s", g.index,
                   (unsigned long long)w.session_id, st.message().c_str());
    return;  // the worker's exit is handled by OnChildExit
  }
  Holder h{g.warm_pid, g.warm_ctl, w.session_id, w.identity, HostOf(w.identity), Field(w.identity, " pid="),
           Clock::now()};
  g.holders.push_back(h);
  g.warm_pid = -1;
  g.warm_ctl = -1;
  g.warm_ready = false;
  ++sessions_served_;
  RGPU_LOG_INFO("gpu %d: session %llu (%s, %s) after %.1f ms in queue%s", g.index,
                (unsigned long long)w.session_id, w.identity.c_str(), w.peer.c_str(),
                Seconds(Clock::now() - w.since) * 1e3, g.holders.size() > 1 ? ", sharing its parent's lease" : "");
  // The next session's context is created while this one runs.
  SpawnWarm(g);
}

void GpuPool::Dispatch() {
  for (auto it = queue_.begin(); it != queue_.end();) {
    Gpu* target = nullptr;
    if (it->family_gpu >= 0) {
      Gpu& g = gpus_[it->family_gpu];
      if (g.holders.empty()) it->family_gpu = -1;  // the parent is gone: an ordinary session now
      else if (g.warm_ready) target = &g;
    }
    if (it->family_gpu < 0) {
      for (Gpu& g : gpus_)
        if (g.holders.empty() && g.warm_ready) {
          target = &g;
          break;
        }
      if (target == nullptr) return;  // FIFO: nobody overtakes the head
    }
    if (target == nullptr) {
      ++it;
      continue;
    }
    Waiting w = std::move(*it);
    it = queue_.erase(it);
    Attach(*target, std::move(w));
  }
}

void GpuPool::TellPositions() {
  int pos = 1;
  for (auto it = queue_.begin(); it != queue_.end(); ++pos) {
    std::vector<uint8_t> payload, frame;
    proto::Writer w(&payload);
    w.I32(0);
    w.U32(static_cast<uint32_t>(pos));
    proto::AppendFrame({0, kEventQueuePosition, proto::kEvent, 0}, payload, &frame);
    // Non-blocking and tiny: a client that cannot take 24 bytes is gone.
    ssize_t n = send(it->fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n != static_cast<ssize_t>(frame.size())) {
      RGPU_LOG_INFO("%s: left the queue", it->peer.c_str());
      close(it->fd);
      it = queue_.erase(it);
      continue;
    }
    ++it;
  }
}

void GpuPool::AddPollFds(std::vector<pollfd>* fds) const {
  for (const Gpu& g : gpus_) {
    if (g.warm_ctl >= 0) fds->push_back({g.warm_ctl, POLLIN, 0});
    for (const Holder& h : g.holders)
      if (h.ctl >= 0) fds->push_back({h.ctl, POLLIN, 0});
  }
  for (const Waiting& w : queue_) fds->push_back({w.fd, POLLIN | POLLRDHUP, 0});
}

void GpuPool::OnPoll(const std::vector<pollfd>& fds) {
  bool changed = false;
  for (const pollfd& p : fds) {
    if (p.revents == 0) continue;
    for (Gpu& g : gpus_) {
      for (auto h = g.holders.begin(); h != g.holders.end(); ++h) {
        if (p.fd != h->ctl) continue;
        ControlMessage m;
        Status st = ReceiveControl(h->ctl, &m);
        close(h->ctl);
        h->ctl = -1;
        if (st.ok() && m.kind == ControlKind::kReleased) {
          // Wiped: the lease ends now; the process finishes exiting on its own.
          RGPU_LOG_INFO("gpu %d: session %llu released after %.1f s", g.index, (unsigned long long)h->session_id,
                        Seconds(Clock::now() - h->since));
          g.holders.erase(h);
          if (g.warm_pid < 0) SpawnWarm(g);
          changed = true;
        }
        break;  // otherwise the lease ends when the process is reaped
      }
      if (p.fd != g.warm_ctl) continue;
      ControlMessage m;
      Status st = ReceiveControl(g.warm_ctl, &m);
      if (st.ok() && m.kind == ControlKind::kReady) {
        g.warm_ready = true;
        g.fast_failures = 0;
        RGPU_LOG_INFO("gpu %d: warm worker %d ready in %.1f ms", g.index, g.warm_pid,
                      Seconds(Clock::now() - g.warm_started) * 1e3);
        changed = true;
      } else {
        // It died or spoke nonsense: its exit is reaped in OnChildExit.
        close(g.warm_ctl);
        g.warm_ctl = -1;
        g.warm_ready = false;
        if (g.warm_pid > 0) kill(g.warm_pid, SIGKILL);
      }
    }
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
  for (Gpu& g : gpus_) {
    for (auto h = g.holders.begin(); h != g.holders.end(); ++h) {
      if (h->worker_pid != pid) continue;
      RGPU_LOG_INFO("gpu %d: session %llu ended (worker status %d); %.1f s held", g.index,
                    (unsigned long long)h->session_id, status, Seconds(Clock::now() - h->since));
      if (h->ctl >= 0) close(h->ctl);
      g.holders.erase(h);
      if (g.warm_pid < 0) SpawnWarm(g);
      Dispatch();
      TellPositions();
      return true;
    }
    if (pid == g.warm_pid) {
      if (g.warm_ctl >= 0) close(g.warm_ctl);
      g.warm_ctl = -1;
      g.warm_pid = -1;
      g.warm_ready = false;
      bool fast = Clock::now() - g.warm_started < kFastFailure;
      g.fast_failures = fast ? g.fast_failures + 1 : 0;
      if (g.fast_failures >= kMaxFastFailures) {
        RGPU_LOG_ERROR("gpu %d: warm workers keep failing (status %d); GPU taken out of the pool",
                       g.index, status);
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
  for (Waiting& w : queue_) close(w.fd);
  queue_.clear();
}

size_t GpuPool::sessions() const {
  size_t n = 0;
  for (const Gpu& g : gpus_) n += g.holders.size();
  return n;
}

std::string GpuPool::StatusJson() const {
  std::ostringstream o;
  auto now = Clock::now();
  o << "{\"backend\":" << JsonString(options_.backend) << ",\"gpus\":[";
  for (size_t i = 0; i < gpus_.size(); ++i) {
    const Gpu& g = gpus_[i];
    o << (i ? "," : "") << "{\"index\":" << g.index << ",\"state\":\""
      << (!g.holders.empty() ? "leased" : g.warm_ready ? "free" : "starting") << "\"";
    if (!g.holders.empty()) {
      const Holder& first = g.holders.front();
      o << ",\"session\":" << first.session_id << ",\"holder\":" << JsonString(first.identity)
        << ",\"held_s\":" << Seconds(now - first.since) << ",\"holders\":[";
      for (size_t k = 0; k < g.holders.size(); ++k)
        o << (k ? "," : "") << "{\"session\":" << g.holders[k].session_id
          << ",\"identity\":" << JsonString(g.holders[k].identity)
          << ",\"worker_pid\":" << g.holders[k].worker_pid << "}";
      o << "]";
    }
    o << ",\"warm_worker\":" << (g.warm_ready ? "true" : "false") << "}";
  }
  o << "],\"queue\":[";
  int pos = 0;
  for (const Waiting& w : queue_) {
    ++pos;
    o << (pos > 1 ? "," : "") << "{\"position\":" << pos << ",\"session\":" << w.session_id
      << ",\"identity\":" << JsonString(w.identity) << ",\"waiting_s\":" << Seconds(now - w.since) << "}";
  }
  o << "],\"sessions_active\":" << sessions() << ",\"sessions_served\":" << sessions_served_ << "}";
  return o.str();
}

}  // namespace rgpu::server
