#include "client/connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/net.h"
#include "proto/frame.h"
#include "proto/frame_reader.h"
#include "proto/handshake.h"
#include "proto/version.h"

namespace rgpu::client {

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

  proto::Hello hello{proto::kHelloMagic, proto::kProtocolVersion, options.token, options.identity, 1};
  std::vector<uint8_t> frame = proto::EncodeHelloFrame(hello);
  RGPU_RETURN_IF_ERROR(net::WriteAll(*fd, frame.data(), frame.size()));
  if (!net::WaitReadable(*fd, options.handshake_timeout_ms))
    return Status::Transport("server " + options.server + " did not answer the handshake within " +
                             std::to_string(options.handshake_timeout_ms) + " ms");
  uint8_t hb[proto::kFrameHeaderSize];
  Status st = net::ReadExact(*fd, hb, sizeof hb);
  if (!st.ok()) return std::move(st).With("handshake with " + options.server);
  proto::FrameHeader h;
  RGPU_RETURN_IF_ERROR(proto::DecodeFrameHeader(hb, 8192, &h));
  std::vector<uint8_t> body(h.length);
  RGPU_RETURN_IF_ERROR(net::ReadExact(*fd, body.data(), body.size()));
  proto::HelloReply reply;
  RGPU_RETURN_IF_ERROR(proto::DecodeHelloReply(body, &reply));
  if (reply.status != proto::HelloStatus::kAccepted)
    return Status::Auth("server " + options.server + " refused the session: " + reply.message);
  c->session_id_ = reply.session_id;
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
    Status st = net::WriteAll(fd_, batch.data(), batch.size());
    lock.lock();
    bytes_sent_ += batch.size();
    batch.clear();
    if (!st.ok() && failed_.ok()) failed_ = std::move(st).With("send");
  }
  flushing_ = false;
  return failed_;
}

Status Connection::CallRaw(proto::CallId id, std::span<const uint8_t> payload, Reply* reply) {
  auto waiter = std::make_shared<Waiter>();
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
  cv_.wait(lock, [&] { return waiter->done; });
  if (!waiter->status.ok()) return waiter->status;
  *reply = std::move(waiter->reply);
  return {};
}

Status Connection::PostRaw(proto::CallId id, std::span<const uint8_t> payload, Completion done) {
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
    w->done = true;
    w->status = failed_;
  }
  waiters_.clear();
  cv_.notify_all();
  send_cv_.notify_all();
}

void Connection::ReceiveLoop() {
  proto::FrameReader reader(fd_, proto::kMaxFramePayload);
  for (;;) {
    proto::FrameHeader h;
    std::span<const uint8_t> body;
    Status st = reader.Next(&h, &body);
    if (!st.ok()) return Fail(std::move(st));
    proto::Reader r(body);
    int32_t cu = 0;
    if (!r.I32(&cu).ok()) return Fail(Status::Protocol("reply without a result code"));
    if (h.flags & proto::kEvent) {
      // Device output of this program (printf, assert messages), written
      // where the program's own output goes, before the reply that follows.
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
      std::span<const uint8_t> text;
      if (!r.Bytes(proto::kMaxChunk, &text).ok()) return Fail(Status::Protocol("bad event frame"));
      int fd = h.call == 1 ? 1 : h.call == 2 ? 2 : -1;
      if (fd >= 0) (void)net::WriteFd(fd, text.data(), text.size());
      continue;
    }
    if (h.flags & proto::kAsyncError) {
      std::string msg;
      (void)r.Str(4096, &msg);
      if (on_async_error_) on_async_error_(cu, msg);
      continue;
    }
    if (!(h.flags & proto::kReply)) return Fail(Status::Protocol("unexpected frame from server"));
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
    Reply reply;
    reply.cu = cu;
    reply.payload.assign(r.rest().begin(), r.rest().end());
    if (w->completion) {
      w->completion(reply);
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    w->reply = std::move(reply);
    w->done = true;
    cv_.notify_all();
  }
}

}  // namespace rgpu::client
