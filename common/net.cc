#include "common/net.h"

#include <algorithm>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace rgpu::net {

Result<HostPort> ParseHostPort(const std::string& text, uint16_t default_port) {
  HostPort hp;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos) return Status::Invalid("address '" + text + "': missing ']'");
    hp.host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':') return Status::Invalid("address '" + text + "': expected ':'");
      port = text.substr(close + 2);
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
      hp.host = text;
    } else {
      hp.host = text.substr(0, colon);
      port = text.substr(colon + 1);
    }
  }
  if (hp.host.empty()) return Status::Invalid("address '" + text + "': empty host");
  if (port.empty()) {
    hp.port = default_port;
  } else {
    char* end = nullptr;
    long v = strtol(port.c_str(), &end, 10);
    if (*end != 0 || v < 0 || v > 65535)
      return Status::Invalid("address '" + text + "': bad port '" + port + "'");
    hp.port = static_cast<uint16_t>(v);
  }
  return hp;
}

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void SetCloexec(int fd, bool on) {
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) return;
  fcntl(fd, F_SETFD, on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC));
}

namespace {
std::string Describe(const HostPort& hp) { return hp.host + ":" + std::to_string(hp.port); }

Result<addrinfo*> Resolve(const HostPort& hp, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (passive) hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  std::string port = std::to_string(hp.port);
  int rc = getaddrinfo(hp.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) return Status::Transport("resolve " + Describe(hp) + ": " + gai_strerror(rc));
  return res;
}
}  // namespace

Result<int> Connect(const HostPort& hp, int timeout_ms) {
  Result<addrinfo*> res = Resolve(hp, false);
  if (!res.ok()) return res.take_status();
  Status last = Status::Transport("connect " + Describe(hp) + ": no address");
  for (addrinfo* ai = *res; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      last = Status::Errno(Code::kTransport, "socket", errno);
      continue;
    }
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int pr;
      do pr = poll(&p, 1, timeout_ms);
      while (pr < 0 && errno == EINTR);
      if (pr == 0) {
        close(fd);
        last = Status::Transport("connect " + Describe(hp) + ": timed out after " +
                                 std::to_string(timeout_ms) + " ms");
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc < 0) {
      last = Status::Errno(Code::kTransport, "connect " + Describe(hp), errno);
      close(fd);
      continue;
    }
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    SetNoDelay(fd);
    freeaddrinfo(*res);
    return fd;
  }
  freeaddrinfo(*res);
  return last;
}

Result<int> Listen(const HostPort& hp, int backlog) {
  Result<addrinfo*> res = Resolve(hp, true);
  if (!res.ok()) return res.take_status();
  Status last = Status::Transport("listen " + Describe(hp) + ": no address");
  for (addrinfo* ai = *res; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
      last = Status::Errno(Code::kTransport, "listen " + Describe(hp), errno);
      close(fd);
      continue;
    }
    freeaddrinfo(*res);
    return fd;
  }
  freeaddrinfo(*res);
  return last;
}

Result<uint16_t> LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0)
    return Status::Errno(Code::kTransport, "getsockname", errno);
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return Status::Transport("getsockname: not an IP socket");
}

bool PeerIsLoopback(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return false;
  if (ss.ss_family == AF_INET) {
    uint32_t a = ntohl(reinterpret_cast<sockaddr_in*>(&ss)->sin_addr.s_addr);
    return (a >> 24) == 127;
  }
  if (ss.ss_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&a)) return a.s6_addr[12] == 127;
  }
  return ss.ss_family == AF_UNIX;
}

std::string PeerName(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
    port = ntohs(s->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
    port = ntohs(s->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) == 1) return (ntohl(a.s_addr) >> 24) == 127;
  return false;
}

Status WriteAll(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::Errno(Code::kTransport, "write", errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return {};
}

Status WriteAll2(int fd, const void* a, size_t na, const void* b, size_t nb) {
  iovec iov[2] = {{const_cast<void*>(a), na}, {const_cast<void*>(b), nb}};
  iovec* v = iov;
  int count = 2;
  while (count > 0) {
    if (v->iov_len == 0) {  // an empty or finished piece
      ++v;
      --count;
      continue;
    }
    msghdr m{};
    m.msg_iov = v;
    m.msg_iovlen = static_cast<size_t>(count);
    ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::Errno(Code::kTransport, "write", errno);
    }
    // Skip what went out; a piece may be left partly written.
    for (size_t left = static_cast<size_t>(w); left > 0 && count > 0;) {
      size_t take = std::min(left, v->iov_len);
      v->iov_base = static_cast<char*>(v->iov_base) + take;
      v->iov_len -= take;
      left -= take;
      if (v->iov_len == 0) {
        ++v;
        --count;
      }
    }
  }
  return {};
}

Status WriteFd(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::Errno(Code::kTransport, "write", errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return {};
}

Status ReadExact(int fd, void* buf, size_t n) {
  char* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = recv(fd, p, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::Errno(Code::kTransport, "read", errno);
    }
    if (r == 0) return Status::Transport("connection closed by peer");
    p += r;
    n -= static_cast<size_t>(r);
  }
  return {};
}

bool WaitReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  int rc;
  do rc = poll(&p, 1, timeout_ms);
  while (rc < 0 && errno == EINTR);
  return rc > 0;
}

}  // namespace rgpu::net
