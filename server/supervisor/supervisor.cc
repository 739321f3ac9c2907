#include "server/supervisor/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

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

Supervisor::Supervisor(SupervisorOptions options) : options_(std::move(options)) {}

Supervisor::~Supervisor() {
  for (Pending& p : pending_) close(p.fd);
  if (listen_fd_ >= 0) close(listen_fd_);
}

Status Supervisor::Start() {
  Result<net::HostPort> hp = net::ParseHostPort(options_.listen, 7070);
  if (!hp.ok()) return hp.take_status();
  if (!net::IsLoopbackHost(hp->host) && options_.token.empty())
    return Status::Auth("refusing to listen on " + options_.listen +
                        " without a token: pass --token-file (only loopback may go without)");
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
  return {};
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
    for (Pending& p : pending_) fds.push_back({p.fd, POLLIN, 0});
    int rc = poll(fds.data(), fds.size(), 100);
    if (rc < 0 && errno != EINTR) {
      RGPU_LOG_ERROR("poll: %s", strerror(errno));
      return 1;
    }
    ReapChildren();
    auto now = std::chrono::steady_clock::now();
    std::vector<Pending> keep;
    for (size_t i = 0; i < pending_.size(); ++i) {
      Pending& p = pending_[i];
      bool done = false;
      if (rc > 0 && (fds[i + 1].revents & (POLLIN | POLLHUP | POLLERR))) done = ServePending(p);
      if (!done && now > p.deadline) {
        RGPU_LOG_WARN("%s: handshake timed out", p.peer.c_str());
        close(p.fd);
        done = true;
      }
      if (!done) keep.push_back(std::move(p));
    }
    pending_ = std::move(keep);
    if (rc > 0 && (fds[0].revents & POLLIN)) AcceptAll();
  }
  RGPU_LOG_INFO("stopping; %zu worker(s) still running are told to stop", workers_.size());
  for (auto& [pid, sid] : workers_) kill(pid, SIGTERM);
  for (auto& [pid, sid] : workers_) waitpid(pid, nullptr, 0);
  workers_.clear();
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
    if (static_cast<int>(pending_.size()) >= options_.max_pending_handshakes) {
      RGPU_LOG_WARN("%s: too many connections in handshake; closed", peer.c_str());
      close(fd);
      continue;
    }
    net::SetNoDelay(fd);
    Pending p;
    p.fd = fd;
    p.peer = peer;
    p.deadline = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(options_.handshake_timeout_ms);
    pending_.push_back(std::move(p));
  }
}

void Supervisor::Refuse(Pending& p, int status, const std::string& why) {
  RGPU_LOG_WARN("%s: refused: %s", p.peer.c_str(), why.c_str());
  auto frame = proto::EncodeHelloReplyFrame(
      {static_cast<proto::HelloStatus>(status), why, 0});
  // Best effort: the socket is non-blocking and the reply is small.
  ssize_t ignored = send(p.fd, frame.data(), frame.size(), MSG_NOSIGNAL);
  (void)ignored;
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
  if (p.buf.size() < proto::kFrameHeaderSize) return false;
  proto::FrameHeader h;
  Status st = proto::DecodeFrameHeader(p.buf.data(), proto::kMaxHelloPayload, &h);
  if (st.ok() && (h.call != 0 || h.flags != 0)) st = Status::Protocol("first frame is not a hello");
  if (!st.ok()) {
    Refuse(p, static_cast<int>(proto::HelloStatus::kMalformed), "bad handshake: " + st.message());
    return true;
  }
  if (p.buf.size() < proto::kFrameHeaderSize + h.length) return false;
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
  if (static_cast<int>(workers_.size()) >= options_.max_sessions) {
    Refuse(p, static_cast<int>(proto::HelloStatus::kNoCapacity),
           "server at its session limit (" + std::to_string(options_.max_sessions) + ")");
    return true;
  }
  uint64_t sid = next_session_id_++;
  st = SpawnWorker(p.fd, sid);
  if (!st.ok()) {
    Refuse(p, static_cast<int>(proto::HelloStatus::kNoCapacity), "cannot start worker: " + st.message());
    return true;
  }
  RGPU_LOG_INFO("%s: session %llu (%s) started", p.peer.c_str(), (unsigned long long)sid,
                hello.identity.c_str());
  close(p.fd);  // the worker owns it now
  return true;
}

Status Supervisor::SpawnWorker(int fd, uint64_t session_id) {
  std::vector<std::string> args = {options_.self_exe, "--worker-fd", std::to_string(fd),
                                   "--session-id", std::to_string(session_id),
                                   "--backend", options_.backend,
                                   "--sim-gpus", std::to_string(options_.sim_gpus)};
  if (!options_.driver_path.empty()) args.insert(args.end(), {"--driver", options_.driver_path});
  if (!options_.profile_path.empty()) args.insert(args.end(), {"--profile", options_.profile_path});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return Status::Errno(Code::kInternal, "fork", errno);
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec. A worker must not
    // outlive its supervisor: its client then gets a closed link at once.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    fcntl(fd, F_SETFD, 0);  // keep across exec
    if (listen_fd_ >= 0) close(listen_fd_);
    execv(argv[0], argv.data());
    _exit(127);
  }
  workers_[pid] = session_id;
  return {};
}

void Supervisor::ReapChildren() {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    auto it = workers_.find(pid);
    uint64_t sid = it == workers_.end() ? 0 : it->second;
    if (it != workers_.end()) workers_.erase(it);
    if (WIFSIGNALED(status))
      RGPU_LOG_WARN("session %llu: worker %d killed by signal %d", (unsigned long long)sid, pid,
                    WTERMSIG(status));
    else if (WEXITSTATUS(status) != 0)
      RGPU_LOG_WARN("session %llu: worker %d exited with %d", (unsigned long long)sid, pid,
                    WEXITSTATUS(status));
    else
      RGPU_LOG_INFO("session %llu: ended", (unsigned long long)sid);
  }
}

}  // namespace rgpu::server
