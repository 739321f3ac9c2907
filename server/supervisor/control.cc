#include "server/supervisor/control.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "proto/coding.h"
#include "proto/compression.h"

namespace rgpu::server {
namespace {
constexpr size_t kMaxControl = 2048;
constexpr uint32_t kMaxControlSecret = 64;
constexpr uint32_t kMaxControlGpus = 64;  // as many as proto::kMaxDevices
}

Status ControlPair(int fds[2]) {
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0)
    return Status::Errno(Code::kInternal, "socketpair", errno);
  return {};
}

Status SendControl(int sock, const ControlMessage& m, bool nonblocking) {
  std::vector<uint8_t> buf;
  proto::Writer w(&buf);
  w.U8(static_cast<uint8_t>(m.kind));
  w.U64(m.session_id);
  w.Str(m.identity.substr(0, 1024));
  w.U64(m.value);
  w.U32(static_cast<uint32_t>(m.gpus.size()));
  for (int g : m.gpus) w.I32(g);
  w.Str(m.secret.substr(0, kMaxControlSecret));
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  if (m.fd >= 0) {
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &m.fd, sizeof(int));
  }
  for (;;) {
    if (sendmsg(sock, &msg, MSG_NOSIGNAL | (nonblocking ? MSG_DONTWAIT : 0)) >= 0) return {};
    if (errno != EINTR) return Status::Errno(Code::kTransport, "control send", errno);
  }
}

Status ReceiveControl(int sock, ControlMessage* m) {
  uint8_t buf[kMaxControl];
  iovec iov{buf, sizeof buf};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return Status::Errno(Code::kTransport, "control receive", errno);
  if (n == 0) return Status::Transport("control channel closed");
  m->fd = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
      memcpy(&m->fd, CMSG_DATA(c), sizeof(int));
  }
  auto fail = [&](const char* why) {
    if (m->fd >= 0) close(m->fd);
    m->fd = -1;
    return Status::Protocol(std::string("control message: ") + why);
  };
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) return fail("truncated");
  proto::Reader r(buf, static_cast<size_t>(n));
  uint8_t kind = 0;
  if (!r.U8(&kind).ok() || kind < 1 || kind > static_cast<uint8_t>(ControlKind::kScrub)) return fail("unknown kind");
  m->kind = static_cast<ControlKind>(kind);
  uint32_t ngpus = 0;
  if (!r.U64(&m->session_id).ok() || !r.Str(1024, &m->identity).ok() || !r.U64(&m->value).ok() ||
      !r.U32(&ngpus).ok() || ngpus > kMaxControlGpus)
    return fail("malformed");
  m->gpus.assign(ngpus, 0);
  for (int& g : m->gpus) {
    int32_t v = 0;
    if (!r.I32(&v).ok() || v < 0 || v >= static_cast<int32_t>(kMaxControlGpus)) return fail("bad GPU ordinal");
    g = v;
  }
  if (!r.Str(kMaxControlSecret, &m->secret).ok() || !r.Finish().ok()) return fail("malformed");
  if (m->kind == ControlKind::kAttach && m->fd < 0) return fail("attach without a client socket");
  if (!m->gpus.empty() && m->kind != ControlKind::kAttach && m->kind != ControlKind::kResume)
    return fail("GPUs on a message that carries none");
  if (m->kind == ControlKind::kReattach && m->value > 1) return fail("bad reattach flag");
  if (m->kind == ControlKind::kAttach && m->value > static_cast<uint64_t>(proto::Codec::kZstd))
    return fail("bad codec");
  return {};
}

}  // namespace rgpu::server
