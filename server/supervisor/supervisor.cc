#include "server/supervisor/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "common/log.h"
#include "common/net.h"
#include "proto/frame.h"
#include "proto/handshake.h"
#include "proto/version.h"

namespace rgpu::server {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

void SetNonBlocking(int fd, bool on) {
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK));
}

}  // namespace

Supervisor::Supervisor(SupervisorOptions options)
    : options_(std::move(options)),
      auth_limiter_({options_.auth_fail_limit, std::chrono::milliseconds(options_.auth_fail_window_ms)}) {}

Supervisor::~Supervisor() {
  for (Pending& p : pending_) close(p.fd);
  pool_.reset();
  for (int fd : {listen_fd_, admin_fd_, sigchld_fd_})
    if (fd >= 0) close(fd);
  if (!options_.admin_socket.empty() && admin_fd_ >= 0) unlink(options_.admin_socket.c_str());
}

Status Supervisor::Start() {
  Result<net::HostPort> hp = net::ParseHostPort(options_.listen, 7070);
  if (!hp.ok()) return hp.take_status();
  if (!net::IsLoopbackHost(hp->host) && options_.token.empty())
    return Status::Auth("refusing to listen on " + options_.listen +
                        " without a token: pass --token-file (only loopback may go without)");
  if (options_.tls_cert.empty() != options_.tls_key.empty())
    return Status::Invalid("--tls-cert and --tls-key go together");
  if (!options_.tls_cert.empty()) {
    // Checked now, so that a bad file stops the server at its start; the
    // workers load the same files.
    Result<std::shared_ptr<tls::Context>> ctx = tls::Context::ForServer(options_.tls_cert, options_.tls_key);
    if (!ctx.ok()) return ctx.take_status();
    tls_ = *ctx;
  }
  if (options_.backend != "cuda" && options_.backend != "sim")
    return Status::Invalid("unknown backend '" + options_.backend + "' (expected cuda or sim)");
  Result<int> fd = net::Listen(*hp, 512);
  if (!fd.ok()) return fd.take_status();
  listen_fd_ = *fd;
  SetNonBlocking(listen_fd_, true);
  Result<uint16_t> port = net::LocalPort(listen_fd_);
  if (!port.ok()) return port.take_status();
  port_ = *port;
  if (options_.self_exe.empty()) {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return Status::Errno(Code::kInternal, "readlink /proc/self/exe", errno);
    options_.self_exe.assign(buf, n);
  }
  Result<std::vector<int>> gpus = ChooseGpus();
  if (!gpus.ok()) return gpus.take_status();
  // SIGCHLD through a descriptor: a session's end frees its GPU at once.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  sigchld_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sigchld_fd_ < 0) return Status::Errno(Code::kInternal, "signalfd", errno);
  if (options_.admin_socket.empty()) options_.admin_socket = "/tmp/rgpu-server-" + std::to_string(port_) + ".sock";
  unlink(options_.admin_socket.c_str());
  admin_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (options_.admin_socket.size() >= sizeof addr.sun_path)
    return Status::Invalid("admin socket path too long: " + options_.admin_socket);
  strcpy(addr.sun_path, options_.admin_socket.c_str());
  if (admin_fd_ < 0 || bind(admin_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(admin_fd_, 16) != 0)
    return Status::Errno(Code::kTransport, "admin socket " + options_.admin_socket, errno);
  chmod(options_.admin_socket.c_str(), 0600);  // status names the users: owner only
  pool_ = std::make_unique<GpuPool>(options_, *gpus);
  pool_->Start();
  return {};
}

Result<std::vector<int>> Supervisor::ChooseGpus() {
  int count = 0;
  if (options_.backend == "sim") {
    count = options_.sim_gpus;
  } else {
    // Count the GPUs with a probe process: the supervisor itself never
    // loads CUDA.
    std::string cmd = "'" + options_.self_exe + "' --probe-gpus --backend cuda";
    if (!options_.driver_path.empty()) cmd += " --driver '" + options_.driver_path + "'";
    FILE* f = popen(cmd.c_str(), "r");
    if (f == nullptr) return Status::Errno(Code::kInternal, "popen probe", errno);
    if (fscanf(f, "%d", &count) != 1) count = -1;
    int rc = pclose(f);
    if (count <= 0 || rc != 0)
      return Status::Internal("no usable GPU found by the cuda backend (probe said " + std::to_string(count) + ")");
  }
  std::vector<int> out;
  if (options_.gpus == "all") {
    for (int i = 0; i < count; ++i) out.push_back(i);
    return out;
  }
  std::stringstream ss(options_.gpus);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    long v = strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != 0 || v < 0 || v >= count)
      return Status::Invalid("--gpus: '" + item + "' is not a GPU index below " + std::to_string(count));
    for (int d : out)
      if (d == v) return Status::Invalid("--gpus: " + item + " named twice");
    out.push_back(static_cast<int>(v));
  }
  if (out.empty()) return Status::Invalid("--gpus: no GPU named");
  return out;
}

void Supervisor::ServeAdmin() {
  for (;;) {
    int fd = accept4(admin_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    std::string json = pool_->StatusJson() + "\n";
    // Tiny, one write; a reader that cannot take it loses it.
    ssize_t ignored = send(fd, json.data(), json.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)ignored;
    close(fd);
  }
}

void Supervisor::RequestStop() { g_stop.store(true); }

int Supervisor::Run() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  RGPU_LOG_INFO("listening on port %u, backend %s", port_, options_.backend.c_str());
  while (!g_stop.load()) {
    std::vector<pollfd> fds;
    fds.push_back({listen_fd_, POLLIN, 0});
    fds.push_back({sigchld_fd_, POLLIN, 0});
    fds.push_back({admin_fd_, POLLIN, 0});
    size_t first_pending = fds.size();
    for (Pending& p : pending_) fds.push_back({p.fd, POLLIN, 0});
    size_t first_pool = fds.size();
    pool_->AddPollFds(&fds);
    int rc = poll(fds.data(), fds.size(), 100);
    if (rc < 0 && errno != EINTR) {
      RGPU_LOG_ERROR("poll: %s", strerror(errno));
      return 1;
    }
    if (rc > 0 && fds[1].revents) {
      signalfd_siginfo si;
      while (read(sigchld_fd_, &si, sizeof si) == sizeof si) {
      }
    }
    ReapChildren();
    if (rc > 0 && fds[2].revents) ServeAdmin();
    auto now = std::chrono::steady_clock::now();
    std::vector<Pending> keep;
    for (size_t i = 0; i < pending_.size(); ++i) {
      Pending& p = pending_[i];
      bool done = false;
      if (rc > 0 && (fds[first_pending + i].revents & (POLLIN | POLLHUP | POLLERR))) done = ServePending(p);
      if (!done && now > p.deadline) {
        RGPU_LOG_WARN("%s: handshake timed out", p.peer.c_str());
        ChargeFailure(p);
        close(p.fd);
        done = true;
      }
      if (!done) keep.push_back(std::move(p));
    }
    pending_ = std::move(keep);
    if (rc > 0) pool_->OnPoll(std::vector<pollfd>(fds.begin() + first_pool, fds.end()));
    if (rc > 0 && (fds[0].revents & POLLIN)) AcceptAll();
    pool_->SpawnDueWarm();
  }
  RGPU_LOG_INFO("stopping; %zu session(s) still running are told to stop", pool_->sessions());
  pool_->StopAll();
  return 0;
}

void Supervisor::AcceptAll() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) RGPU_LOG_WARN("accept: %s", strerror(errno));
      return;
    }
    std::string peer = net::PeerName(fd);
    // Connections whose peers already hung up do not hold a place: a flood
    // of dropped connections must not lock out the next real client.
    if (static_cast<int>(pending_.size()) >= options_.max_pending_handshakes) {
      std::vector<Pending> alive;
      for (Pending& p : pending_) {
        char c;
        ssize_t n = recv(p.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) close(p.fd);
        else alive.push_back(std::move(p));
      }
      pending_ = std::move(alive);
    }
    if (static_cast<int>(pending_.size()) >= options_.max_pending_handshakes) {
      RGPU_LOG_WARN("%s: too many connections in handshake; closed", peer.c_str());
      close(fd);
      continue;
    }
    net::SetNoDelay(fd);
    Pending p;
    p.fd = fd;
    p.peer = peer;
    p.address = AuthLimiter::AddressOf(peer);
    std::chrono::milliseconds retry{0};
    bool first = false;
    if (auth_limiter_.Refused(p.address, std::chrono::steady_clock::now(), &retry, &first)) {
      // Answered once its hello arrives (a reply sent before it could be
      // lost to the reset that closing an unread socket causes).
      p.limited_reason = "too many failed handshakes from " + p.address + ": refused for " +
                         std::to_string((retry.count() + 999) / 1000) + " s more";
      if (first) RGPU_LOG_WARN("%s: %s (logged once per window)", peer.c_str(), p.limited_reason.c_str());
    }
    p.deadline = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(options_.handshake_timeout_ms);
    pending_.push_back(std::move(p));
  }
}

void Supervisor::ChargeFailure(const Pending& p) {
  if (!p.limited_reason.empty()) return;  // already refused: not counted again
  if (auth_limiter_.RecordFailure(p.address, std::chrono::steady_clock::now()))
    RGPU_LOG_WARN("%s: %d failed handshakes within %d ms: its connections are refused until the window ends",
                  p.address.c_str(), options_.auth_fail_limit, options_.auth_fail_window_ms);
}

void Supervisor::Refuse(Pending& p, int status, const std::string& why) {
  if (p.limited_reason.empty()) RGPU_LOG_WARN("%s: refused: %s", p.peer.c_str(), why.c_str());
  else RGPU_LOG_DEBUG("%s: refused: %s", p.peer.c_str(), why.c_str());
  if (status != static_cast<int>(proto::HelloStatus::kNoCapacity)) ChargeFailure(p);
  auto frame = proto::EncodeHelloReplyFrame(
      {static_cast<proto::HelloStatus>(status), why, 0});
  // Best effort: the socket is non-blocking and the reply is small. A TLS
  // client gets it inside its session, then the session's end.
  if (p.tls != nullptr && p.tls->handshake_done()) {
    if (p.tls->WriteAll(frame.data(), frame.size()).ok()) (void)p.tls->Close(0);
  } else {
    ssize_t ignored = send(p.fd, frame.data(), frame.size(), MSG_NOSIGNAL);
    (void)ignored;
  }
  close(p.fd);
}

bool Supervisor::ServePending(Pending& p) {
  uint8_t tmp[4096];
  for (;;) {
    ssize_t n = recv(p.fd, tmp, sizeof tmp, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      RGPU_LOG_WARN("%s: read: %s", p.peer.c_str(), strerror(errno));
      close(p.fd);
      return true;
    }
    if (n == 0) {
      RGPU_LOG_INFO("%s: closed during handshake", p.peer.c_str());
      close(p.fd);
      return true;
    }
    p.buf.insert(p.buf.end(), tmp, tmp + n);
    if (p.buf.size() > proto::kFrameHeaderSize + proto::kMaxHelloPayload) break;
  }
  if (!ServeTls(p)) return true;
  if (p.tls != nullptr && !p.tls->handshake_done()) return false;
  if (p.buf.size() < proto::kFrameHeaderSize) return false;
  proto::FrameHeader h;
  Status st = proto::DecodeFrameHeader(p.buf.data(), proto::kMaxHelloPayload, &h);
  if (st.ok() && (h.call != 0 || h.flags != 0)) st = Status::Protocol("first frame is not a hello");
  if (!st.ok()) {
    Refuse(p, static_cast<int>(proto::HelloStatus::kMalformed), "bad handshake: " + st.message());
    return true;
  }
  if (p.buf.size() < proto::kFrameHeaderSize + h.length) return false;
  if (!p.limited_reason.empty()) {
    Refuse(p, static_cast<int>(proto::HelloStatus::kRefused), p.limited_reason);
    return true;
  }
  if (p.buf.size() > proto::kFrameHeaderSize + h.length) {
    Refuse(p, static_cast<int>(proto::HelloStatus::kMalformed), "data after hello before reply");
    return true;
  }
  proto::Hello hello;
  st = proto::DecodeHello(std::span<const uint8_t>(p.buf).subspan(proto::kFrameHeaderSize), &hello);
  if (!st.ok()) {
    Refuse(p, static_cast<int>(proto::HelloStatus::kMalformed), "bad hello: " + st.message());
    return true;
  }
  if (hello.version != proto::kProtocolVersion) {
    Refuse(p, static_cast<int>(proto::HelloStatus::kBadVersion),
           "protocol version " + std::to_string(hello.version) + " not supported (server speaks " +
               std::to_string(proto::kProtocolVersion) + ")");
    return true;
  }
  if (options_.token.empty()) {
    if (!net::PeerIsLoopback(p.fd)) {
      Refuse(p, static_cast<int>(proto::HelloStatus::kRefused),
             "server has no token configured and accepts loopback clients only");
      return true;
    }
  } else if (!proto::ConstantTimeEquals(hello.token, options_.token)) {
    Refuse(p, static_cast<int>(proto::HelloStatus::kBadToken), "wrong or missing token");
    return true;
  }
  if (static_cast<int>(pool_->sessions() + pool_->queued()) >= options_.max_sessions) {
    Refuse(p, static_cast<int>(proto::HelloStatus::kNoCapacity),
           "server at its session limit (" + std::to_string(options_.max_sessions) + ")");
    return true;
  }
  // A request the pool can never serve is refused now, not left waiting.
  Result<int> gpus = pool_->CheckRequest(hello.gpus_wanted);
  if (!gpus.ok()) {
    Refuse(p, static_cast<int>(proto::HelloStatus::kNoCapacity), gpus.status().message());
    return true;
  }
  uint64_t sid = next_session_id_++;
  // The pool leases a GPU now or queues the client; the worker that takes
  // the session sends the handshake's reply.
  // A TLS session stays non-blocking: the pool's few writes on it must
  // never stall the loop (the worker sets its own mode).
  if (p.tls == nullptr) {
    int flags = fcntl(p.fd, F_GETFL);
    fcntl(p.fd, F_SETFL, flags & ~O_NONBLOCK);
  }
  const proto::Codec codec = proto::PickCodec(hello.compress_offer, options_.compress);
  pool_->Admit(p.fd, sid, hello.identity, p.peer, *gpus, std::move(p.tls), codec);
  return true;
}

bool Supervisor::ServeTls(Pending& p) {
  // A TLS client opens with a handshake record: type 22, version 3.x with a
  // non-zero minor. An rgpu Hello opens with its payload length, a
  // little-endian u32 below 64 KiB: its third byte is 0.
  auto looks_tls = [&] { return p.buf.size() >= 3 && p.buf[0] == 22 && p.buf[1] == 3 && p.buf[2] != 0; };
  if (tls_ == nullptr) {
    if (!looks_tls()) return true;
    Refuse(p, static_cast<int>(proto::HelloStatus::kRefused),
           "this server does not use TLS: unset RGPU_TLS, or start the server with --tls-cert/--tls-key");
    return false;
  }
  if (p.tls == nullptr) {
    if (p.buf.size() < 3) return true;  // not enough to tell yet
    if (!looks_tls()) {
      Refuse(p, static_cast<int>(proto::HelloStatus::kRefused),
             "this server requires TLS: set RGPU_TLS=1 (and RGPU_TLS_CA to the CA of its certificate)");
      return false;
    }
    Result<std::unique_ptr<tls::Stream>> s = tls::Stream::AcceptFed(tls_, p.fd);
    if (!s.ok()) {
      RGPU_LOG_ERROR("%s: %s", p.peer.c_str(), s.status().message().c_str());
      close(p.fd);
      return false;
    }
    p.tls = std::move(*s);
  }
  std::vector<uint8_t> raw(p.buf.begin() + static_cast<long>(p.plain_size), p.buf.end());
  p.buf.resize(p.plain_size);
  Status st = p.tls->Feed(raw, &p.buf);
  p.plain_size = p.buf.size();
  if (!st.ok()) {
    RGPU_LOG_WARN("%s: %s", p.peer.c_str(), st.message().c_str());
    ChargeFailure(p);
    close(p.fd);
    return false;
  }
  return true;
}

void Supervisor::ReapChildren() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    if (WIFSIGNALED(status))
      RGPU_LOG_WARN("worker %d killed by signal %d", pid, WTERMSIG(status));
    else if (WEXITSTATUS(status) != 0)
      RGPU_LOG_WARN("worker %d exited with %d", pid, WEXITSTATUS(status));
    pool_->OnChildExit(pid, status);
  }
}

}  // namespace rgpu::server
