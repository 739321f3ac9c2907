#include "client/connection.h"

#include <sys/socket.h>

#include <chrono>
#include <unistd.h>

#include "client/call_stats.h"
#include "client/client_handshake.h"
#include "common/log.h"
#include "common/spin.h"
#include "common/net.h"
#include "proto/frame.h"
#include "proto/frame_reader.h"
#include "proto/handshake.h"
#include "proto/version.h"

namespace rgpu::client {

// CUDA_ERROR_DEVICE_UNAVAILABLE (common/ and this file avoid cuda.h).
constexpr int CUDA_ERROR_DEVICE_UNAVAILABLE_VALUE = 46;

Result<std::unique_ptr<Connection>> Connection::Open(const ConnectOptions& options,
                                                     AsyncErrorSink on_async_error) {
  Result<net::HostPort> hp = net::ParseHostPort(options.server, 7070);
  if (!hp.ok()) return hp.take_status();
  Result<int> fd = net::Connect(*hp, options.connect_timeout_ms);
  if (!fd.ok()) return fd.take_status();
  std::unique_ptr<Connection> c(new Connection(*fd));
  c->on_async_error_ = std::move(on_async_error);
  int one = 1;
  setsockopt(*fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);

  Result<uint8_t> offer = proto::ParseCompressOffer(options.compress, net::PeerIsLoopback(*fd));
  if (!offer.ok()) return offer.take_status();  // c closes the socket
  proto::Hello hello{proto::kHelloMagic, proto::kProtocolVersion, options.token, options.identity,
                     options.gpus_wanted, *offer};
  // The reply comes from the worker that takes the session; while every GPU
  // is leased the server queues us and says where we stand.
  Result<HandshakeResult> hs = ClientHandshake(*fd, options, hello);
  if (!hs.ok()) return hs.take_status();
  c->session_id_ = hs->session_id;
  c->tls_ = std::move(hs->tls);
  if (hs->codec != proto::Codec::kNone && (*offer & proto::CodecBit(hs->codec)) == 0)
    return Status::Protocol(std::string("server picked compression ") + proto::CodecName(hs->codec) +
                            ", which was not offered");
  if (hs->codec != proto::Codec::kNone) {
    c->encoder_ = std::make_unique<proto::BlockEncoder>(hs->codec);
    RGPU_LOG_DEBUG("bulk copies compressed with %s", proto::CodecName(hs->codec));
  }
  c->receiver_ = std::thread([raw = c.get()] { raw->ReceiveLoop(); });
  c->sender_ = std::thread([raw = c.get()] { raw->SendLoop(); });
  return c;
}

Connection::~Connection() {
  if (abandoned_) {
    if (receiver_.joinable()) receiver_.detach();
    if (sender_.joinable()) sender_.detach();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  send_cv_.notify_all();
  if (sender_.joinable()) sender_.join();
  shutdown(fd_, SHUT_RDWR);
  if (receiver_.joinable()) receiver_.join();
  close(fd_);
}

void Connection::SendLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    send_cv_.wait(lock, [&] { return stopping_ || (!out_.empty() && !flushing_) || !failed_.ok(); });
    if (stopping_ || !failed_.ok()) return;
    (void)Flush(lock);
  }
}

void Connection::AbandonAfterFork() {
  abandoned_ = true;
  // The threads do not exist in the child and the fd is the parent's. No
  // lock is taken: another thread may have held it at fork() time. Callers
  // stop at ClientState::forked() before reaching the connection.
  for (std::thread* th : {&receiver_, &sender_}) {
    std::thread t;
    std::swap(t, *th);
    if (t.joinable()) t.detach();
  }
  fd_ = -1;
  // Its lock may be held by a thread that does not exist in the child.
  (void)tls_.release();
}

Status Connection::health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_;
}

Status Connection::Enqueue(proto::CallId id, uint16_t flags, uint64_t request_id,
                           std::span<const uint8_t> payload) {
  if (payload.size() > proto::kMaxFramePayload)
    return Status::Invalid("request of " + std::to_string(payload.size()) + " bytes over frame limit");
  proto::AppendFrame({0, static_cast<uint16_t>(id), flags, request_id}, payload, &out_);
  return {};
}

// Called with mu_ held; writes while there is something to write. Other
// threads append meanwhile and their frames go out in the next write.
Status Connection::Flush(std::unique_lock<std::mutex>& lock) {
  if (flushing_) return {};
  flushing_ = true;
  std::vector<uint8_t> batch;
  while (!out_.empty() && failed_.ok()) {
    batch.swap(out_);
    out_.clear();
    lock.unlock();
    Status st = WriteOut(batch.data(), batch.size());
    lock.lock();
    bytes_sent_ += batch.size();
    batch.clear();
    if (!st.ok() && failed_.ok()) failed_ = std::move(st).With("send");
  }
  flushing_ = false;
  idle_cv_.notify_all();
  return failed_;
}

Status Connection::CallRaw(proto::CallId id, std::span<const uint8_t> payload, Reply* reply) {
  auto waiter = std::make_shared<Waiter>();
  RGPU_RETURN_IF_ERROR(CallWith(id, payload, waiter));
  *reply = std::move(waiter->reply);
  return {};
}

Status Connection::CallWith(proto::CallId id, std::span<const uint8_t> payload,
                            std::shared_ptr<Waiter> waiter) {
  CallStats* stats = CallStats::Get();
  if (stats != nullptr) {
    auto t0 = std::chrono::steady_clock::now();
    Status st = WaitFor(id, payload, std::move(waiter));
    stats->Sync(static_cast<uint16_t>(id), std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               std::chrono::steady_clock::now() - t0)
                                               .count());
    if (id == proto::CallId::kCtxSynchronize && stats->per_sync()) stats->LogInterval("since the last");
    return st;
  }
  return WaitFor(id, payload, std::move(waiter));
}

Status Connection::WaitFor(proto::CallId id, std::span<const uint8_t> payload,
                           std::shared_ptr<Waiter> waiter) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!failed_.ok()) return failed_;
  uint64_t rid = next_request_id_++;
  RGPU_RETURN_IF_ERROR(Enqueue(id, 0, rid, payload));
  waiters_[rid] = waiter;
  Status st = Flush(lock);
  if (!st.ok()) {
    waiters_.erase(rid);
    return st;
  }
  // A round trip on a fast link is a few tens of microseconds: spinning that
  // long saves the wake-up of a sleeping thread on both ends of it.
  lock.unlock();
  SpinUntil([&] { return waiter->done.load(std::memory_order_acquire); });
  lock.lock();
  cv_.wait(lock, [&] { return waiter->done.load(std::memory_order_acquire); });
  return waiter->status;
}

Status Connection::CallInto(proto::CallId id, std::span<const uint8_t> payload, void* dst, size_t len,
                            int* cu) {
  auto waiter = std::make_shared<Waiter>();
  waiter->direct_dst = static_cast<uint8_t*>(dst);
  waiter->direct_len = len;
  RGPU_RETURN_IF_ERROR(CallWith(id, payload, waiter));
  *cu = waiter->reply.cu;
  return {};
}

Status Connection::PostInto(proto::CallId id, std::span<const uint8_t> payload, void* dst, size_t len,
                            std::function<void(int cu)> done) {
  auto w = std::make_shared<Waiter>();
  w->direct_dst = static_cast<uint8_t*>(dst);
  w->direct_len = len;
  w->direct_done = std::move(done);
  if (CallStats* stats = CallStats::Get()) stats->Async(static_cast<uint16_t>(id));
  std::unique_lock<std::mutex> lock(mu_);
  if (!failed_.ok()) return failed_;
  uint64_t rid = next_request_id_++;
  RGPU_RETURN_IF_ERROR(Enqueue(id, 0, rid, payload));
  waiters_[rid] = std::move(w);
  if (!flushing_) send_cv_.notify_one();
  return {};
}

Status Connection::PostBulk(proto::CallId id, std::span<const uint8_t> fields,
                            std::span<const uint8_t> bulk) {
  if (fields.size() + bulk.size() > proto::kMaxFramePayload)
    return Status::Invalid("request over the frame limit");
  if (CallStats* stats = CallStats::Get()) stats->Async(static_cast<uint16_t>(id));
  std::unique_lock<std::mutex> lock(mu_);
  if (!failed_.ok()) return failed_;
  // Become the only writer; frames queued before this one go out first.
  idle_cv_.wait(lock, [&] { return !flushing_ || !failed_.ok(); });
  if (!failed_.ok()) return failed_;
  flushing_ = true;
  uint64_t rid = next_request_id_++;
  // `head`: the frames queued before this one, which go out first.
  std::vector<uint8_t> head;
  head.swap(out_);
  const bool compress = encoder_ != nullptr && bulk.size() >= proto::kMinCompressedBulk;
  if (!compress) {  // this frame's header and fields follow them in one write
    size_t at = head.size();
    head.resize(at + proto::kFrameHeaderSize);
    proto::EncodeFrameHeader({static_cast<uint32_t>(fields.size() + bulk.size()), static_cast<uint16_t>(id),
                              proto::kNoReply, rid},
                             head.data() + at);
    head.insert(head.end(), fields.begin(), fields.end());
  }
  lock.unlock();
  Status st;
  uint64_t sent = head.size();
  if (compress) {  // then this frame as compressed blocks
    if (!head.empty()) st = WriteOut(head.data(), head.size());
    uint64_t wire_before = encoder_->wire_bytes();
    if (st.ok())
      st = encoder_->WriteFrame(static_cast<uint16_t>(id), proto::kNoReply, rid, fields, bulk,
                                [this](const uint8_t* p, size_t n) { return WriteOut(p, n); });
    sent += proto::kFrameHeaderSize + (encoder_->wire_bytes() - wire_before);
  } else {
    if (tls_) st = tls_->WriteAll(head.data(), head.size());
    if (st.ok()) st = tls_ ? tls_->WriteAll(bulk.data(), bulk.size())
                           : net::WriteAll2(fd_, head.data(), head.size(), bulk.data(), bulk.size());
    sent += bulk.size();
  }
  lock.lock();
  bytes_sent_ += sent;
  if (!st.ok() && failed_.ok()) failed_ = std::move(st).With("send");
  flushing_ = false;
  idle_cv_.notify_all();
  if (!out_.empty()) send_cv_.notify_one();
  return failed_;
}

Status Connection::PostRaw(proto::CallId id, std::span<const uint8_t> payload, Completion done) {
  if (CallStats* stats = CallStats::Get()) stats->Async(static_cast<uint16_t>(id));
  std::unique_lock<std::mutex> lock(mu_);
  if (!failed_.ok()) return failed_;
  uint64_t rid = next_request_id_++;
  uint16_t flags = 0;
  if (done) {
    auto w = std::make_shared<Waiter>();
    w->completion = std::move(done);
    waiters_[rid] = std::move(w);
  } else {
    flags = proto::kNoReply;
  }
  RGPU_RETURN_IF_ERROR(Enqueue(id, flags, rid, payload));
  if (!flushing_) send_cv_.notify_one();
  return {};
}

void Connection::Fail(Status why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (failed_.ok()) {
    failed_ = std::move(why);
    RGPU_LOG_ERROR("lost the link to the GPU server: %s", failed_.message().c_str());
  }
  for (auto& [rid, w] : waiters_) {
    w->status = failed_;
    w->done.store(true, std::memory_order_release);
    if (w->direct_done) w->direct_done(CUDA_ERROR_DEVICE_UNAVAILABLE_VALUE);
  }
  waiters_.clear();
  cv_.notify_all();
  send_cv_.notify_all();
}

Status Connection::ReceiveReply(proto::FrameReader& reader, const proto::FrameHeader& h,
                                const std::shared_ptr<Waiter>& w) {
  Reply reply;
  uint8_t head[12];
  bool direct = w->direct_dst != nullptr && h.length == 12 + w->direct_len;
  if (direct) {
    // i32 CUresult, u64 length, then the data straight into place.
    RGPU_RETURN_IF_ERROR(reader.ReadPayload(head, 12));
    proto::Reader r(head, 12);
    int32_t cu = 0;
    uint64_t n = 0;
    (void)r.I32(&cu);
    (void)r.U64(&n);
    if (n != w->direct_len) return Status::Protocol("device-to-host reply of unexpected size");
    RGPU_RETURN_IF_ERROR(reader.ReadPayload(w->direct_dst, n));
    reply.cu = cu;
  } else {
    std::vector<uint8_t> body(h.length);
    RGPU_RETURN_IF_ERROR(reader.ReadPayload(body.data(), body.size()));
    proto::Reader r(body);
    int32_t cu = 0;
    if (!r.I32(&cu).ok()) return Status::Protocol("reply without a result code");
    reply.cu = cu;
    if (w->direct_dst != nullptr && cu == 0) return Status::Protocol("device-to-host reply without its data");
    reply.payload.assign(r.rest().begin(), r.rest().end());
  }
  if (w->direct_done) {
    w->direct_done(reply.cu);
    return {};
  }
  if (w->completion) {
    w->completion(reply);
    return {};
  }
  std::lock_guard<std::mutex> lock(mu_);
  w->reply = std::move(reply);
  w->done.store(true, std::memory_order_release);
  cv_.notify_all();
  return {};
}

void Connection::ReceiveLoop() {
  proto::FrameReader reader(fd_, tls_.get(), proto::kMaxFramePayload);
  reader.set_codec(codec());
  // Frames from the worker are mostly replies to calls the application
  // waits for: poll briefly for the next one instead of sleeping, so that a
  // loop of synchronous calls pays no wake-up on this side (frames are rare
  // otherwise, so the polling costs little).
  reader.set_spin(true);
  std::vector<uint8_t> body;
  for (;;) {
    proto::FrameHeader h;
    Status st = reader.NextHeader(&h);
    if (!st.ok()) return Fail(std::move(st));
    if (h.flags & proto::kReply) {
      std::shared_ptr<Waiter> w;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = waiters_.find(h.request_id);
        if (it != waiters_.end()) {
          w = it->second;
          waiters_.erase(it);
        }
      }
      if (!w) return Fail(Status::Protocol("reply to unknown request " + std::to_string(h.request_id)));
      st = ReceiveReply(reader, h, w);
      if (!st.ok()) {
        // The waiter is no longer in waiters_: put it back so that Fail
        // releases it with the others (a link lost in the middle of a
        // reply must not leave its caller waiting forever).
        {
          std::lock_guard<std::mutex> lock(mu_);
          waiters_[h.request_id] = std::move(w);
        }
        return Fail(std::move(st));
      }
      continue;
    }
    body.resize(h.length);
    st = reader.ReadPayload(body.data(), body.size());
    if (!st.ok()) return Fail(std::move(st));
    proto::Reader r(body);
    int32_t cu = 0;
    if (!r.I32(&cu).ok()) return Fail(Status::Protocol("frame without a result code"));
    if (h.flags & proto::kEvent) {
      if (h.call == 4) {  // a host function is due
        uint64_t id = 0;
        if (!r.U64(&id).ok()) return Fail(Status::Protocol("bad host-function event"));
        HostFuncSink sink;
        {
          std::lock_guard<std::mutex> lock(mu_);
          sink = host_func_sink_;
        }
        if (sink) sink(id);
        continue;
      }
      // Device output of this program (printf, assert messages), written
      // where the program's own output goes, before the reply that follows.
      std::span<const uint8_t> text;
      if (!r.Bytes(proto::kMaxChunk, &text).ok()) return Fail(Status::Protocol("bad event frame"));
      int fd = h.call == 1 ? 1 : h.call == 2 ? 2 : -1;
      if (fd >= 0) (void)net::WriteFd(fd, text.data(), text.size());
      continue;
    }
    if (h.flags & proto::kAsyncError) {
      std::string msg;
      (void)r.Str(4096, &msg);
      // A failed request that had a reply waiter (PostInto, Post with done)
      // still releases it.
      std::shared_ptr<Waiter> w;
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = waiters_.find(h.request_id);
        if (it != waiters_.end()) {
          w = it->second;
          waiters_.erase(it);
        }
      }
      if (on_async_error_) on_async_error_(cu, msg);
      continue;
    }
    return Fail(Status::Protocol("unexpected frame from server"));
  }
}

}  // namespace rgpu::client
