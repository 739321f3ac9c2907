#include "server/worker/link.h"

#include <sys/socket.h>

#include "common/log.h"
#include "common/spin.h"
#include "common/net.h"
#include "proto/calls.gen.h"
#include "proto/coding.h"
#include "proto/frame_reader.h"
#include "server/worker/output_capture.h"

namespace rgpu::worker {

namespace {
constexpr size_t kLargePayload = 1u << 20;
constexpr size_t kMaxSpares = 4;
}  // namespace

void Link::Recycle(Request&& r) {
  if (r.payload.capacity() < kLargePayload) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (spare_.size() < kMaxSpares) spare_.push_back(std::move(r.payload));
}

Link::Link(int fd, size_t max_queued_bytes) : fd_(fd), max_queued_bytes_(max_queued_bytes) {}

Link::~Link() {
  Close();
  shutdown(fd_, SHUT_RD);  // unblocks the reader's recv
  if (reader_.joinable()) reader_.join();
}

void Link::Start() { reader_ = std::thread([this] { ReadLoop(); }); }

void Link::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!ended_) {
    ended_ = true;
    end_reason_ = Status::Transport("session closed");
  }
  cv_.notify_all();
}

void Link::ReadLoop() {
  proto::FrameReader reader(fd_, proto::kMaxFramePayload);
  for (;;) {
    Request r;
    Status st = reader.NextHeader(&r.header);
    if (st.ok()) {
      if (r.header.length >= kLargePayload) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!spare_.empty()) {
          r.payload = std::move(spare_.back());
          spare_.pop_back();
        }
      }
      r.payload.resize(r.header.length);
      st = reader.ReadPayload(r.payload.data(), r.payload.size());
    }
    if (st.ok() && (r.header.flags & (proto::kReply | proto::kAsyncError | proto::kEvent)))
      st = Status::Protocol("client sent a reply-only frame flag");
    if (st.ok() && r.header.call == static_cast<uint16_t>(proto::CallId::kHostFuncDone)) {
      proto::Reader in(r.payload);
      proto::HostFuncDoneReq done;
      st = proto::Decode(in, &done);
      if (st.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        host_funcs_done_.insert(done.callback);
        cv_.notify_all();
        continue;
      }
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (!st.ok()) {
      if (!ended_) {
        ended_ = true;
        end_reason_ = std::move(st);
      }
      cv_.notify_all();
      return;
    }
    // Bounded queue: wait for room (TCP then pushes back on the client).
    cv_.wait(lock, [&] { return ended_ || queued_bytes_ < max_queued_bytes_ || queue_.empty(); });
    if (ended_) return;
    queued_bytes_ += r.payload.size();
    queue_.push_back(std::move(r));
    queued_count_.store(queue_.size(), std::memory_order_release);
    cv_.notify_all();
  }
}

bool Link::NextRequest(Request* r, Status* why) {
  // Requests often follow each other within microseconds: spin briefly
  // before sleeping, so the hand-off from the reader costs no wake-up.
  SpinUntil([&] { return queued_count_.load(std::memory_order_acquire) != 0; });
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !queue_.empty() || ended_; });
  if (!queue_.empty()) {  // serve what arrived before the end
    *r = std::move(queue_.front());
    queue_.pop_front();
    queued_count_.store(queue_.size(), std::memory_order_release);
    queued_bytes_ -= r->payload.size();
    cv_.notify_all();
    return true;
  }
  *why = end_reason_;
  return false;
}

Status Link::Send(std::span<const uint8_t> frame) {
  std::lock_guard<std::mutex> lock(write_mu_);
  return net::WriteAll(fd_, frame.data(), frame.size());
}

Status Link::Send(std::span<const uint8_t> head, std::span<const uint8_t> bulk) {
  std::lock_guard<std::mutex> lock(write_mu_);
  RGPU_RETURN_IF_ERROR(net::WriteAll(fd_, head.data(), head.size()));
  return net::WriteAll(fd_, bulk.data(), bulk.size());
}

void Link::RunHostFunc(uint64_t id) {
  std::vector<uint8_t> payload, frame;
  proto::Writer w(&payload);
  w.I32(0);
  w.U64(id);
  proto::AppendFrame({0, static_cast<uint16_t>(EventKind::kHostFunc), proto::kEvent, 0}, payload, &frame);
  if (!Send(frame).ok()) return;
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return ended_ || host_funcs_done_.count(id) != 0; });
  host_funcs_done_.erase(id);
}

}  // namespace rgpu::worker
