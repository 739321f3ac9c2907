#include "server/worker/tls_session.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "proto/frame.h"
#include "proto/handshake.h"

namespace rgpu::worker {

Result<std::unique_ptr<tls::Stream>> AcceptBoundSession(std::shared_ptr<tls::Context> ctx, int fd,
                                                        const std::string& secret, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto left = [&] {
    return static_cast<int>(std::max<long long>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count()));
  };
  if (secret.size() != proto::kHandOverSecretSize)
    return Status::Protocol("TLS session handed over without its secret");
  Result<std::unique_ptr<tls::Stream>> s = tls::Stream::Accept(std::move(ctx), fd, timeout_ms);
  if (!s.ok()) return s.take_status();
  tls::Stream& st = **s;
  uint8_t hb[proto::kFrameHeaderSize];
  RGPU_RETURN_IF_ERROR(st.ReadExact(hb, sizeof hb, left()));
  proto::FrameHeader h;
  // A Bind is 4 + 8 + 32 bytes: anything larger is not one.
  RGPU_RETURN_IF_ERROR(proto::DecodeFrameHeader(hb, 64, &h));
  if (h.call != 0 || h.flags != 0) return Status::Protocol("TLS: first frame is not a bind");
  std::vector<uint8_t> body(h.length);
  RGPU_RETURN_IF_ERROR(st.ReadExact(body.data(), body.size(), left()));
  std::string got;
  RGPU_RETURN_IF_ERROR(proto::DecodeBind(body, &got));
  if (!proto::ConstantTimeEquals(got, secret))
    return Status::Auth("TLS: bind with the wrong secret (not the client the supervisor admitted)");
  st.EnableReadAhead();
  return s;
}

}  // namespace rgpu::worker
