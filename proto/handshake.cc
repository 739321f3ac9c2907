#include "proto/handshake.h"

#include "proto/coding.h"
#include "proto/compression.h"
#include "proto/frame.h"
#include "proto/version.h"

namespace rgpu::proto {

std::vector<uint8_t> EncodeHelloFrame(const Hello& h) {
  std::vector<uint8_t> payload;
  Writer w(&payload);
  w.U32(h.magic);
  w.U32(h.version);
  w.Str(h.token);
  w.Str(h.identity);
  w.U32(h.gpus_wanted);
  w.U8(h.compress_offer);
  std::vector<uint8_t> frame;
  AppendFrame(FrameHeader{0, 0, 0, 0}, payload, &frame);
  return frame;
}

std::vector<uint8_t> EncodeHelloReplyFrame(const HelloReply& r) {
  std::vector<uint8_t> payload;
  Writer w(&payload);
  w.I32(static_cast<int32_t>(r.status));
  w.Str(r.message);
  w.U64(r.session_id);
  w.U8(r.codec);
  std::vector<uint8_t> frame;
  AppendFrame(FrameHeader{0, 0, kReply, 0}, payload, &frame);
  return frame;
}

Status DecodeHello(std::span<const uint8_t> payload, Hello* h) {
  Reader r(payload);
  RGPU_RETURN_IF_ERROR(r.U32(&h->magic));
  if (h->magic != kHelloMagic) return Status::Protocol("hello: bad magic (not an rgpu client)");
  RGPU_RETURN_IF_ERROR(r.U32(&h->version));
  RGPU_RETURN_IF_ERROR(r.Str(kMaxTokenLength, &h->token));
  RGPU_RETURN_IF_ERROR(r.Str(kMaxIdentityLength, &h->identity));
  RGPU_RETURN_IF_ERROR(r.U32(&h->gpus_wanted));
  RGPU_RETURN_IF_ERROR(r.U8(&h->compress_offer));
  return r.Finish();
}

Status DecodeHelloReply(std::span<const uint8_t> payload, HelloReply* out) {
  Reader r(payload);
  int32_t st = 0;
  RGPU_RETURN_IF_ERROR(r.I32(&st));
  if (st < 0 || st > static_cast<int32_t>(HelloStatus::kMalformed))
    return Status::Protocol("hello reply: unknown status " + std::to_string(st));
  out->status = static_cast<HelloStatus>(st);
  RGPU_RETURN_IF_ERROR(r.Str(4096, &out->message));
  RGPU_RETURN_IF_ERROR(r.U64(&out->session_id));
  RGPU_RETURN_IF_ERROR(r.U8(&out->codec));
  if (out->codec > static_cast<uint8_t>(Codec::kZstd))
    return Status::Protocol("hello reply: unknown codec " + std::to_string(out->codec));
  return r.Finish();
}

std::vector<uint8_t> EncodeHandOverFrame(const std::string& secret) {
  std::vector<uint8_t> payload;
  Writer w(&payload);
  w.I32(0);
  w.Bytes(secret.data(), secret.size());
  std::vector<uint8_t> frame;
  AppendFrame(FrameHeader{0, kEventHandOver, kEvent, 0}, payload, &frame);
  return frame;
}

std::vector<uint8_t> EncodeBindFrame(const std::string& secret) {
  std::vector<uint8_t> payload;
  Writer w(&payload);
  w.U32(kBindMagic);
  w.Bytes(secret.data(), secret.size());
  std::vector<uint8_t> frame;
  AppendFrame(FrameHeader{0, 0, 0, 0}, payload, &frame);
  return frame;
}

namespace {
Status GetSecret(Reader& r, const char* what, std::string* secret) {
  std::span<const uint8_t> bytes;
  RGPU_RETURN_IF_ERROR(r.Bytes(kHandOverSecretSize, &bytes));
  if (bytes.size() != kHandOverSecretSize)
    return Status::Protocol(std::string(what) + ": secret of " + std::to_string(bytes.size()) + " bytes");
  secret->assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return r.Finish();
}
}  // namespace

Status DecodeHandOver(std::span<const uint8_t> payload, std::string* secret) {
  Reader r(payload);
  int32_t zero = 0;
  RGPU_RETURN_IF_ERROR(r.I32(&zero));
  return GetSecret(r, "hand-over", secret);
}

Status DecodeBind(std::span<const uint8_t> payload, std::string* secret) {
  Reader r(payload);
  uint32_t magic = 0;
  RGPU_RETURN_IF_ERROR(r.U32(&magic));
  if (magic != kBindMagic) return Status::Protocol("bind: bad magic (not the first message of a TLS session)");
  return GetSecret(r, "bind", secret);
}

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  // Length leaks, content does not: compare over the longer length.
  size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? a[i] : 0;
    unsigned char y = i < b.size() ? b[i] : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

}  // namespace rgpu::proto
