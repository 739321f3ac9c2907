#include "proto/frame_reader.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/spin.h"

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
  RGPU_RETURN_IF_ERROR(Fill(kFrameHeaderSize));
  RGPU_RETURN_IF_ERROR(DecodeFrameHeader(buf_.data() + start_, max_payload_, h));
  start_ += kFrameHeaderSize;
  return {};
}

Status FrameReader::ReadPayload(void* dst, size_t n) {
  if (n == 0) return {};  // dst may be null then (an empty payload's data())
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
  if (h->length <= buf_.size()) {
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
