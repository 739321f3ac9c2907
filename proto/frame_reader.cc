#include "proto/frame_reader.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "common/spin.h"
#include "proto/coding.h"

namespace rgpu::proto {

FrameReader::FrameReader(int fd, ByteStream* stream, uint32_t max_payload, size_t buffer_size)
    : fd_(fd), stream_(stream), max_payload_(max_payload), buf_(buffer_size) {}

Result<size_t> FrameReader::Receive(void* dst, size_t n) {
  if (stream_ != nullptr) return stream_->Read(dst, n);
  if (spin_ && SpinMicros() > 0) {
    ssize_t r = -1;
    int err = 0;
    if (SpinUntil([&] {
          r = recv(fd_, dst, n, MSG_DONTWAIT);
          err = r < 0 ? errno : 0;
          return r >= 0 || (err != EAGAIN && err != EWOULDBLOCK && err != EINTR);
        })) {
      if (r > 0) return static_cast<size_t>(r);
      if (r == 0) return Status::Transport("connection closed by peer");
      return Status::Errno(Code::kTransport, "read", err);
    }
  }
  for (;;) {
    ssize_t r = recv(fd_, dst, n, 0);
    if (r > 0) return static_cast<size_t>(r);
    if (r == 0) return Status::Transport("connection closed by peer");
    if (errno != EINTR) return Status::Errno(Code::kTransport, "read", errno);
  }
}

Status FrameReader::Fill(size_t n) {
  if (end_ - start_ >= n) return {};
  if (start_ + n > buf_.size()) {  // make room: move the tail to the front
    memmove(buf_.data(), buf_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  while (end_ - start_ < n) {
    Result<size_t> r = Receive(buf_.data() + end_, buf_.size() - end_);
    if (!r.ok()) return r.take_status();
    end_ += *r;
  }
  return {};
}

Status FrameReader::NextHeader(FrameHeader* h) {
  if (decoded_left_ != 0) return Status::Internal("frame reader: the last compressed frame was not read to its end");
  RGPU_RETURN_IF_ERROR(Fill(kFrameHeaderSize));
  RGPU_RETURN_IF_ERROR(DecodeFrameHeader(buf_.data() + start_, max_payload_, h));
  start_ += kFrameHeaderSize;
  if (h->flags & kCompressed) {
    if (codec_ == Codec::kNone) return Status::Protocol("compressed frame on a link that agreed on no compression");
    h->flags &= static_cast<uint16_t>(~kCompressed);
    decoded_left_ = h->length;
    block_at_ = block_end_ = 0;
  }
  return {};
}

Status FrameReader::ReadPayload(void* dst, size_t n) {
  if (n == 0) return {};  // dst may be null then (an empty payload's data())
  if (decoded_left_ != 0) return ReadDecoded(static_cast<uint8_t*>(dst), n);
  return ReadRaw(dst, n);
}

Status FrameReader::NextBlock(uint8_t* dst, size_t want, size_t* direct) {
  uint8_t head[kBlockHeaderSize];
  RGPU_RETURN_IF_ERROR(ReadRaw(head, sizeof head));
  uint8_t method = 0;
  uint32_t raw = 0, wire = 0;
  Reader fields(head, sizeof head);  // exactly these three: cannot fail
  (void)fields.U8(&method);
  (void)fields.U32(&raw);
  (void)fields.U32(&wire);
  const size_t undecoded = decoded_left_ - (block_end_ - block_at_);
  if (raw == 0 || raw > kMaxBlock || raw > undecoded)
    return Status::Protocol("compressed frame: block of " + std::to_string(raw) + " bytes where " +
                            std::to_string(undecoded) + " remain (at most " + std::to_string(kMaxBlock) + ")");
  uint8_t* to = dst;
  if (raw > want) {
    if (block_.size() < kMaxBlock) block_.resize(kMaxBlock);
    to = block_.data();
  }
  if (method == static_cast<uint8_t>(Codec::kNone)) {
    if (wire != raw) return Status::Protocol("compressed frame: stored block with a different wire length");
    RGPU_RETURN_IF_ERROR(ReadRaw(to, raw));
  } else if (method == static_cast<uint8_t>(codec_)) {
    if (wire == 0 || wire > MaxWireBlock(codec_, raw))
      return Status::Protocol("compressed frame: block of " + std::to_string(wire) + " wire bytes for " +
                              std::to_string(raw));
    wire_.resize(wire);
    RGPU_RETURN_IF_ERROR(ReadRaw(wire_.data(), wire));
    RGPU_RETURN_IF_ERROR(DecodeBlock(codec_, wire_, std::span<uint8_t>(to, raw)));
  } else {
    return Status::Protocol("compressed frame: block method " + std::to_string(method) + " on a " +
                            CodecName(codec_) + " link");
  }
  if (to == dst) {
    *direct = raw;
  } else {
    *direct = 0;
    block_at_ = 0;
    block_end_ = raw;
  }
  return {};
}

Status FrameReader::ReadDecoded(uint8_t* dst, size_t n) {
  if (n > decoded_left_) return Status::Internal("frame reader: read past the end of a compressed frame");
  while (n > 0) {
    if (block_at_ < block_end_) {
      size_t k = std::min(n, block_end_ - block_at_);
      memcpy(dst, block_.data() + block_at_, k);
      block_at_ += k;
      dst += k;
      n -= k;
      decoded_left_ -= k;
      continue;
    }
    size_t direct = 0;
    RGPU_RETURN_IF_ERROR(NextBlock(dst, n, &direct));
    dst += direct;
    n -= direct;
    decoded_left_ -= direct;
  }
  return {};
}

Status FrameReader::ReadRaw(void* dst, size_t n) {
  if (n == 0) return {};
  auto* out = static_cast<uint8_t*>(dst);
  size_t have = std::min(n, end_ - start_);
  memcpy(out, buf_.data() + start_, have);
  start_ += have;
  if (start_ == end_) start_ = end_ = 0;
  size_t got = have;
  // Small remainders go through the buffer (fewer recv calls for the next
  // frames); large ones straight into dst.
  if (n - got < buf_.size() / 4) {
    RGPU_RETURN_IF_ERROR(Fill(n - got));
    memcpy(out + got, buf_.data() + start_, n - got);
    start_ += n - got;
    return {};
  }
  while (got < n) {
    Result<size_t> r = Receive(out + got, n - got);
    if (!r.ok()) return r.take_status();
    got += *r;
  }
  return {};
}

Status FrameReader::Next(FrameHeader* h, std::span<const uint8_t>* payload) {
  RGPU_RETURN_IF_ERROR(NextHeader(h));
  if (h->length <= buf_.size() && decoded_left_ == 0) {
    RGPU_RETURN_IF_ERROR(Fill(h->length));
    *payload = std::span<const uint8_t>(buf_.data() + start_, h->length);
    start_ += h->length;
    return {};
  }
  static thread_local std::vector<uint8_t> big;
  big.resize(h->length);
  RGPU_RETURN_IF_ERROR(ReadPayload(big.data(), h->length));
  *payload = big;
  return {};
}

Status FrameReader::NextOwned(FrameHeader* h, std::vector<uint8_t>* payload) {
  RGPU_RETURN_IF_ERROR(NextHeader(h));
  payload->resize(h->length);
  return ReadPayload(payload->data(), h->length);
}

}  // namespace rgpu::proto
