#include "proto/frame_reader.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace rgpu::proto {

FrameReader::FrameReader(int fd, uint32_t max_payload, size_t buffer_size)
    : fd_(fd), max_payload_(max_payload), buf_(buffer_size) {}

Status FrameReader::Fill(size_t n) {
  if (end_ - start_ >= n) return {};
  if (start_ + n > buf_.size()) {  // make room: move the tail to the front
    memmove(buf_.data(), buf_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
  }
  while (end_ - start_ < n) {
    ssize_t r = recv(fd_, buf_.data() + end_, buf_.size() - end_, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::Errno(Code::kTransport, "read", errno);
    }
    if (r == 0) return Status::Transport("connection closed by peer");
    end_ += static_cast<size_t>(r);
  }
  return {};
}

bool FrameReader::HasBufferedFrame() const {
  if (end_ - start_ < kFrameHeaderSize) return false;
  FrameHeader h;
  if (!DecodeFrameHeader(buf_.data() + start_, max_payload_, &h).ok()) return true;  // Next reports it
  return end_ - start_ >= kFrameHeaderSize + h.length;
}

Status FrameReader::NextOwned(FrameHeader* h, std::vector<uint8_t>* payload) {
  RGPU_RETURN_IF_ERROR(Fill(kFrameHeaderSize));
  RGPU_RETURN_IF_ERROR(DecodeFrameHeader(buf_.data() + start_, max_payload_, h));
  size_t total = kFrameHeaderSize + h->length;
  if (total <= buf_.size()) {
    RGPU_RETURN_IF_ERROR(Fill(total));
    const uint8_t* p = buf_.data() + start_ + kFrameHeaderSize;
    payload->assign(p, p + h->length);
    start_ += total;
    return {};
  }
  big_.swap(*payload);
  std::span<const uint8_t> ignored;
  Status st = Next(h, &ignored);  // reads into big_ (re-decodes the header)
  big_.swap(*payload);
  return st;
}

Status FrameReader::Next(FrameHeader* h, std::span<const uint8_t>* payload) {
  RGPU_RETURN_IF_ERROR(Fill(kFrameHeaderSize));
  RGPU_RETURN_IF_ERROR(DecodeFrameHeader(buf_.data() + start_, max_payload_, h));
  size_t total = kFrameHeaderSize + h->length;
  if (total <= buf_.size()) {
    RGPU_RETURN_IF_ERROR(Fill(total));
    *payload = std::span<const uint8_t>(buf_.data() + start_ + kFrameHeaderSize, h->length);
    start_ += total;
    return {};
  }
  // Large payload: take what is buffered, read the rest directly.
  big_.resize(h->length);
  size_t have = end_ - start_ - kFrameHeaderSize;
  memcpy(big_.data(), buf_.data() + start_ + kFrameHeaderSize, have);
  start_ = end_ = 0;
  size_t got = have;
  while (got < h->length) {
    ssize_t r = recv(fd_, big_.data() + got, h->length - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::Errno(Code::kTransport, "read", errno);
    }
    if (r == 0) return Status::Transport("connection closed by peer");
    got += static_cast<size_t>(r);
  }
  *payload = big_;
  return {};
}

}  // namespace rgpu::proto
