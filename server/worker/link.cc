#include "server/worker/link.h"

#include <poll.h>
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
// The most requests (and bytes) the executor takes from the queue at once.
constexpr size_t kMaxBatch = 256;
constexpr size_t kMaxBatchBytes = 1u << 20;

// True once the peer has closed its end (its unread bytes notwithstanding).
bool PeerHungUp(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}
constexpr size_t kMaxSpares = 4;
// Small request buffers kept for reuse (launch arguments, copy headers).
constexpr size_t kSmallPayload = 4096;
constexpr size_t kMaxSmallSpares = 512;
// Requests the reader collects before handing them over in one go.
constexpr size_t kMaxHandOver = 64;
}  // namespace

void Link::Recycle(Request&& r) {
  size_t cap = r.payload.capacity();
  if (cap > 0 && cap <= kSmallPayload) {
    if (small_returned_.size() < kMaxSmallSpares) small_returned_.push_back(std::move(r.payload));
    return;
  }
  if (cap < kLargePayload) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (spare_.size() < kMaxSpares) spare_.push_back(std::move(r.payload));
}

Link::Link(int fd, tls::Stream* tls, size_t max_queued_bytes, proto::Codec codec)
    : fd_(fd), tls_(tls), max_queued_bytes_(max_queued_bytes), encoder_(codec) {}

Link::~Link() {
  Close();
  shutdown(fd_, SHUT_RD);  // unblocks the reader's recv
  if (reader_.joinable()) reader_.join();
}

void Link::Start(std::function<void()> on_end) {
  reader_ = std::thread([this, on_end = std::move(on_end)] {
    ReadLoop();
    if (on_end) on_end();
  });
}

void Link::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!ended_) {
    ended_ = true;
    end_reason_ = Status::Transport("session closed");
  }
  cv_.notify_all();
}

void Link::ReadLoop() {
  proto::FrameReader reader(fd_, tls_, proto::kMaxFramePayload);
  reader.set_codec(encoder_.codec());
  std::vector<Request> pending;  // read, not yet handed to the executor
  pending.reserve(kMaxHandOver);
  for (;;) {
    Request r;
    Status st = reader.NextHeader(&r.header);
    // A bulk payload may take a while to arrive (a 64 MiB copy): what was
    // collected before it goes to the executor first, so that GPU work runs
    // while the data streams in.
    if (st.ok() && r.header.length > kSmallPayload && !Hand(&pending)) return;
    if (st.ok()) {
      if (r.header.length >= kLargePayload) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!spare_.empty()) {
          r.payload = std::move(spare_.back());
          spare_.pop_back();
        }
      } else if (r.header.length <= kSmallPayload && !small_free_.empty()) {
        r.payload = std::move(small_free_.back());
        small_free_.pop_back();
      }
      r.payload.resize(r.header.length);
      st = reader.ReadPayload(r.payload.data(), r.payload.size());
    }
    // After a request the client waits for, its next one typically follows
    // one round trip later: poll for it rather than sleep, so that a loop of
    // synchronous calls pays no wake-up here. After asynchronous work (a
    // stream of launches) the reader sleeps between frames as usual, and
    // leaves the CPU to the executor and the application.
    reader.set_spin(st.ok() && (r.header.flags & proto::kNoReply) == 0);
    if (st.ok() && (r.header.flags & (proto::kReply | proto::kAsyncError | proto::kEvent)))
      st = Status::Protocol("client sent a reply-only frame flag");
    if (st.ok() && r.header.call == static_cast<uint16_t>(proto::CallId::kHostFuncDone)) {
      proto::Reader in(r.payload);
      proto::HostFuncDoneReq done;
      st = proto::Decode(in, &done);
      if (st.ok()) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          host_funcs_done_.insert(done.callback);
          cv_.notify_all();
        }
        if (!reader.HeaderBuffered() && !Hand(&pending)) return;  // never block with requests held
        continue;
      }
    }
    if (!st.ok()) {
      if (!Hand(&pending)) return;  // what came before the failure is served
      std::lock_guard<std::mutex> lock(mu_);
      if (!ended_) {
        ended_ = true;
        end_reason_ = std::move(st);
      }
      cv_.notify_all();
      return;
    }
    // While the next frame is already received, keep collecting: a stream
    // of launches is handed over a socket read at a time, one lock shared
    // with the executor per batch instead of per request. A request the
    // client waits for goes at once, and so does everything collected
    // before the reader would block.
    const bool small_async = (r.header.flags & proto::kNoReply) != 0 && r.payload.size() <= kSmallPayload;
    pending.push_back(std::move(r));
    const bool more = small_async && reader.HeaderBuffered() && pending.size() < kMaxHandOver;
    if (!more && !Hand(&pending)) return;
  }
}

bool Link::Hand(std::vector<Request>* pending) {
  if (pending->empty()) return true;
  std::unique_lock<std::mutex> lock(mu_);
  // Bounded queue: wait for room (TCP then pushes back on the client).
  // While waiting, nothing reads the socket, so a client that hangs up
  // is noticed by polling for it: otherwise an executor blocked on the
  // client (a host function) and this reader would wait for each other
  // forever, and the session would never end.
  auto room = [&] { return ended_ || queued_bytes_ < max_queued_bytes_ || queue_.empty(); };
  while (!cv_.wait_for(lock, std::chrono::milliseconds(100), room)) {
    if (!PeerHungUp(fd_)) continue;
    ended_ = true;
    end_reason_ = Status::Transport("client hung up with requests queued");
    cv_.notify_all();
    return false;
  }
  if (ended_) return false;
  if (small_free_.empty()) small_free_.swap(small_spare_);  // what the executor handed back
  for (Request& r : *pending) {
    queued_bytes_ += r.payload.size();
    queue_.push_back(std::move(r));
  }
  pending->clear();
  queued_count_.store(queue_.size(), std::memory_order_release);
  cv_.notify_all();
  return true;
}

bool Link::NextRequest(Request* r, Status* why) {
  if (!batch_.empty()) {
    *r = std::move(batch_.front());
    batch_.pop_front();
    return true;
  }
  // Requests often follow each other within microseconds: spin briefly
  // before sleeping, so the hand-off from the reader costs no wake-up.
  SpinUntil([&] { return queued_count_.load(std::memory_order_acquire) != 0; });
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !queue_.empty() || ended_; });
  if (!queue_.empty()) {  // serve what arrived before the end
    // Take what is there in one go (launches come by the hundred): one lock
    // per batch, not per request, shared with the reader that fills the
    // queue. A batch is bounded, so the queue's byte bound still holds
    // within kMaxBatchBytes (plus one request).
    size_t bytes = 0;
    do {
      bytes += queue_.front().payload.size();
      batch_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    } while (!queue_.empty() && batch_.size() < kMaxBatch && bytes < kMaxBatchBytes);
    // Hand the served small buffers back to the reader in one go.
    if (!small_returned_.empty() && small_spare_.size() < kMaxSmallSpares) {
      if (small_spare_.empty()) {
        small_spare_.swap(small_returned_);
      } else {
        for (PayloadBuffer& b : small_returned_)
          if (small_spare_.size() < kMaxSmallSpares) small_spare_.push_back(std::move(b));
      }
    }
    small_returned_.clear();
    queued_count_.store(queue_.size(), std::memory_order_release);
    queued_bytes_ -= bytes;
    cv_.notify_all();
    lock.unlock();
    *r = std::move(batch_.front());
    batch_.pop_front();
    return true;
  }
  *why = end_reason_;
  return false;
}

bool Link::WaitForRequest(std::chrono::milliseconds timeout) {
  if (!batch_.empty()) return true;
  // Spin first, as NextRequest does: a request that follows within
  // microseconds must not pay for waking a sleeping executor (that cost
  // 6 us on every synchronous round trip on an H200 host).
  if (SpinUntil([&] { return queued_count_.load(std::memory_order_acquire) != 0; })) return true;
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || ended_; });
}

bool Link::ended() {
  std::lock_guard<std::mutex> lock(mu_);
  return ended_;
}

Status Link::Write(const uint8_t* p, size_t n) {
  return tls_ != nullptr ? tls_->WriteAll(p, n) : net::WriteAll(fd_, p, n);
}

Status Link::Send(std::span<const uint8_t> frame) {
  std::lock_guard<std::mutex> lock(write_mu_);
  return Write(frame.data(), frame.size());
}

Status Link::SendCompressed(std::span<const uint8_t> head, std::span<const uint8_t> bulk,
                            const proto::ReadyFn& ready) {
  proto::FrameHeader h;
  RGPU_RETURN_IF_ERROR(proto::DecodeFrameHeader(head.data(), proto::kMaxFramePayload, &h));
  return encoder_.WriteFrame(h.call, h.flags, h.request_id, head.subspan(proto::kFrameHeaderSize), bulk,
                             [this](const uint8_t* p, size_t n) { return Write(p, n); }, ready);
}

Status Link::Send(std::span<const uint8_t> head, std::span<const uint8_t> bulk) {
  std::lock_guard<std::mutex> lock(write_mu_);
  if (Compresses(bulk.size())) return SendCompressed(head, bulk, nullptr);
  if (tls_ != nullptr) {
    RGPU_RETURN_IF_ERROR(Write(head.data(), head.size()));
    return Write(bulk.data(), bulk.size());
  }
  return net::WriteAll2(fd_, head.data(), head.size(), bulk.data(), bulk.size());
}

Status Link::SendStaged(std::span<const uint8_t> head, std::span<const uint8_t> bulk, size_t piece,
                        const std::function<Status(size_t upto)>& ready) {
  std::lock_guard<std::mutex> lock(write_mu_);
  if (Compresses(bulk.size())) return SendCompressed(head, bulk, ready);  // in its own pieces (blocks)
  RGPU_RETURN_IF_ERROR(Write(head.data(), head.size()));
  Status late;  // the data's failure, reported after the frame is complete
  for (size_t at = 0; at < bulk.size(); at += piece) {
    size_t n = std::min(piece, bulk.size() - at);
    if (late.ok()) late = ready(at + n);
    RGPU_RETURN_IF_ERROR(Write(bulk.data() + at, n));
  }
  return late;
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
