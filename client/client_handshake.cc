#include "client/client_handshake.h"

#include <chrono>

#include "common/log.h"
#include "common/net.h"
#include "proto/coding.h"
#include "proto/frame.h"

namespace rgpu::client {
namespace {

constexpr uint16_t kEventQueuePosition = 3;
// A TLS session's end, and the worker's answer to Bind, come at once.
constexpr int kHandOverTimeoutMs = 10000;

// The handshake's byte stream: the socket, or a TLS session on it.
struct Io {
  int fd;
  tls::Stream* tls;
  Status Write(const std::vector<uint8_t>& b) {
    return tls != nullptr ? tls->WriteAll(b.data(), b.size()) : net::WriteAll(fd, b.data(), b.size());
  }
  bool WaitReadable(int ms) { return tls != nullptr ? tls->WaitReadable(ms) : net::WaitReadable(fd, ms); }
  Status ReadExact(void* p, size_t n) { return tls != nullptr ? tls->ReadExact(p, n) : net::ReadExact(fd, p, n); }
};

// What ended the wait: the HelloReply, or (TLS) the hand-over to a worker.
struct Answer {
  bool handed_over = false;
  std::string secret;
  proto::HelloReply reply;
};

// Reads frames until the HelloReply or the hand-over, saying where we stand
// in the queue meanwhile (one line, only when the position changes).
Result<Answer> AwaitAnswer(Io& io, const ConnectOptions& options, bool may_hand_over) {
  auto start = std::chrono::steady_clock::now();
  uint32_t last_position = 0;
  Answer a;
  for (;;) {
    int waited = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count());
    int left = options.wait_timeout_ms < 0 ? -1 : std::max(0, options.wait_timeout_ms - waited);
    if (!io.WaitReadable(left)) {
      if (options.tls && !may_hand_over)  // the worker's session: no queue here
        return Status::Transport("the worker on " + options.server + " did not answer within " +
                                 std::to_string(options.wait_timeout_ms / 1000) + " s");
      return Status::Transport("no GPU became free on " + options.server + " within " +
                               std::to_string(options.wait_timeout_ms / 1000) + " s (RGPU_WAIT_TIMEOUT)");
    }
    uint8_t hb[proto::kFrameHeaderSize];
    Status st = io.ReadExact(hb, sizeof hb);
    if (!st.ok()) return std::move(st).With("handshake with " + options.server);
    proto::FrameHeader h;
    RGPU_RETURN_IF_ERROR(proto::DecodeFrameHeader(hb, 8192, &h));
    std::vector<uint8_t> body(h.length);
    RGPU_RETURN_IF_ERROR(io.ReadExact(body.data(), body.size()));
    if ((h.flags & proto::kEvent) && h.call == proto::kEventHandOver && may_hand_over) {
      RGPU_RETURN_IF_ERROR(proto::DecodeHandOver(body, &a.secret));
      a.handed_over = true;
      break;
    }
    if (h.flags & proto::kEvent) {
      proto::Reader r(body);
      int32_t ignored = 0;
      uint32_t position = 0;
      if (h.call == kEventQueuePosition && r.I32(&ignored).ok() && r.U32(&position).ok() &&
          position != last_position) {
        RGPU_LOG_WARN("waiting for a GPU on %s: position %u in the queue", options.server.c_str(), position);
        last_position = position;
      }
      continue;
    }
    RGPU_RETURN_IF_ERROR(proto::DecodeHelloReply(body, &a.reply));
    break;
  }
  if (last_position != 0)
    RGPU_LOG_WARN("got a GPU after %.1f s in the queue",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return a;
}

Result<HandshakeResult> Accepted(const ConnectOptions& options, const proto::HelloReply& reply) {
  if (reply.status != proto::HelloStatus::kAccepted)
    return Status::Auth("server " + options.server + " refused the session: " + reply.message);
  HandshakeResult r;
  r.session_id = reply.session_id;
  r.codec = static_cast<proto::Codec>(reply.codec);  // <= kZstd, checked by DecodeHelloReply
  return r;
}

// A plaintext server answered our ClientHello: its refusal is on the socket.
Status PlaintextServer(int fd, const ConnectOptions& options) {
  uint8_t hb[proto::kFrameHeaderSize];
  proto::FrameHeader h;
  proto::HelloReply reply;
  if (net::WaitReadable(fd, 1000) && net::ReadExact(fd, hb, sizeof hb).ok() &&
      proto::DecodeFrameHeader(hb, 8192, &h).ok()) {
    std::vector<uint8_t> body(h.length);
    if (net::ReadExact(fd, body.data(), body.size()).ok() && proto::DecodeHelloReply(body, &reply).ok())
      return Status::Transport("server " + options.server + " refused TLS: " + reply.message);
  }
  return Status::Transport("server " + options.server +
                           " answered in plaintext: it does not use TLS; unset RGPU_TLS, or start the server "
                           "with --tls-cert/--tls-key");
}

Result<std::unique_ptr<tls::Stream>> Secure(const std::shared_ptr<tls::Context>& ctx, int fd,
                                           const ConnectOptions& options, const std::string& name) {
  bool plaintext = false;
  Result<std::unique_ptr<tls::Stream>> s = tls::Stream::Connect(ctx, fd, name, options.connect_timeout_ms, &plaintext);
  if (s.ok()) return s;
  if (plaintext) return PlaintextServer(fd, options);
  std::string why = s.status().message();
  if (why.find("certificate rejected") != std::string::npos)
    why += " (expected a certificate for '" + name + "' from the CA in " +
           (options.tls_ca.empty() ? std::string("the system store") : "RGPU_TLS_CA=" + options.tls_ca) +
           "; RGPU_TLS_SERVER_NAME overrides the name)";
  return Status::Transport("TLS with " + options.server + ": " + why);
}

Result<HandshakeResult> TlsHandshake(int fd, const ConnectOptions& options, const proto::Hello& hello) {
  Result<std::shared_ptr<tls::Context>> ctx = tls::Context::ForClient(options.tls_ca);
  if (!ctx.ok()) return ctx.take_status();
  std::string name = options.tls_server_name;
  if (name.empty()) {
    Result<net::HostPort> hp = net::ParseHostPort(options.server, 7070);
    if (!hp.ok()) return hp.take_status();
    name = hp->host;
  }
  // Session one: the supervisor checks the Hello and queues us.
  Result<std::unique_ptr<tls::Stream>> first = Secure(*ctx, fd, options, name);
  if (!first.ok()) return first.take_status();
  Io io{fd, first->get()};
  RGPU_RETURN_IF_ERROR(io.Write(proto::EncodeHelloFrame(hello)));
  Result<Answer> a = AwaitAnswer(io, options, true);
  if (!a.ok()) return a.take_status();
  if (!a->handed_over) return Accepted(options, a->reply);
  Status closed = (*first)->ExpectClose(kHandOverTimeoutMs);
  if (!closed.ok()) return std::move(closed).With("hand-over from " + options.server);
  first->reset();
  // Session two: the worker that now holds our GPU.
  Result<std::unique_ptr<tls::Stream>> second = Secure(*ctx, fd, options, name);
  if (!second.ok()) return second.take_status();
  (*second)->EnableReadAhead();
  io.tls = second->get();
  RGPU_RETURN_IF_ERROR(io.Write(proto::EncodeBindFrame(a->secret)));
  ConnectOptions worker = options;
  worker.wait_timeout_ms = kHandOverTimeoutMs;
  Result<Answer> b = AwaitAnswer(io, worker, false);
  if (!b.ok()) return b.take_status();
  Result<HandshakeResult> r = Accepted(options, b->reply);
  if (!r.ok()) return r;
  RGPU_LOG_DEBUG("session %llu over %s", (unsigned long long)r->session_id, (*second)->Describe().c_str());
  r->tls = std::move(*second);
  return r;
}

}  // namespace

Result<HandshakeResult> ClientHandshake(int fd, const ConnectOptions& options, const proto::Hello& hello) {
  if (options.tls) return TlsHandshake(fd, options, hello);
  Io io{fd, nullptr};
  RGPU_RETURN_IF_ERROR(io.Write(proto::EncodeHelloFrame(hello)));
  Result<Answer> a = AwaitAnswer(io, options, false);
  if (!a.ok()) return a.take_status();
  return Accepted(options, a->reply);
}

}  // namespace rgpu::client
