// Connection: the client's one TCP link to its worker.
//
// Calls are framed and appended to an output buffer. Asynchronous calls are
// written by a sender thread that drains the buffer whenever the socket takes
// more: one message goes out at once on an idle link, many coalesce into one
// write when it is busy (DESIGN.md rule 3), and the calling thread pays only
// for the append. A synchronous call writes itself when nobody else is
// writing (it is about to wait anyway), saving a thread hand-off.
// A receiver thread (started after the handshake, i.e. inside cuInit) reads
// replies and hands them to the waiting caller, runs completion callbacks for
// asynchronous device-to-host copies, and records async errors.
//
// When the link fails, every waiter is woken with the failure, and every
// later call fails at once: nothing hangs on a dead link.
// With RGPU_TLS the same runs over a TLS 1.3 session (client_handshake.h,
// common/tls.h): the sender, the callers and the receiver share it through
// tls::Stream; without TLS they use the socket directly, as before.
// Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/net.h"
#include "common/status.h"
#include "common/tls.h"
#include "proto/calls.gen.h"
#include "proto/compression.h"
#include "proto/frame_reader.h"

namespace rgpu::client {

struct ConnectOptions {
  std::string server;      // HOST:PORT
  std::string token;
  std::string identity;
  int connect_timeout_ms = 10000;
  int wait_timeout_ms = -1;  // for a GPU (queue); -1: as long as it takes
  uint32_t gpus_wanted = 1;  // RGPU_GPUS (proto::kAllGpus: every GPU of the server)
  // TLS 1.3 (client/client_handshake.h): RGPU_TLS, RGPU_TLS_CA (empty: the
  // system store), RGPU_TLS_SERVER_NAME (empty: the host of `server`).
  bool tls = false;
  std::string tls_ca;
  std::string tls_server_name;
  // RGPU_COMPRESS: off | lz4 | zstd | auto (empty = auto: lz4 unless the
  // server is on loopback). The server may still say no (--compress off).
  std::string compress;
};

// A received reply: CUresult and the reply fields that follow it.
struct Reply {
  int cu = 0;
  std::vector<uint8_t> payload;  // after the i32 CUresult
};

// Runs on the receiver thread when an async call's reply arrives; must not
// block or call back into the connection.
using Completion = std::function<void(const Reply&)>;
// Records an async failure (CUresult, message).
using AsyncErrorSink = std::function<void(int cu, const std::string& msg)>;
// Receives host-function events (the callback id), on the receiver thread.
using HostFuncSink = std::function<void(uint64_t id)>;

class Connection {
 public:
  ~Connection();
  // Connects and performs the handshake; on failure says why (refused,
  // wrong token, version mismatch, no server).
  static Result<std::unique_ptr<Connection>> Open(const ConnectOptions& options,
                                                  AsyncErrorSink on_async_error);

  // Sends a request and waits for its reply.
  template <class Req>
  Status Call(proto::CallId id, const Req& req, Reply* reply) {
    std::vector<uint8_t> payload;
    proto::Writer w(&payload);
    proto::Encode(w, req);
    return CallRaw(id, payload, reply);
  }
  // Sends a request whose reply is not waited for: `done` (if any) runs when
  // it arrives; with no `done` the worker answers only failures.
  template <class Req>
  Status Post(proto::CallId id, const Req& req, Completion done = nullptr) {
    std::vector<uint8_t> payload;
    proto::Writer w(&payload);
    proto::Encode(w, req);
    return PostRaw(id, payload, std::move(done));
  }
  Status CallRaw(proto::CallId id, std::span<const uint8_t> payload, Reply* reply);
  Status PostRaw(proto::CallId id, std::span<const uint8_t> payload, Completion done);

  // Bulk host->device data without copies (DESIGN.md rule 5): `fields` is
  // the encoded request up to its last field, a length-prefixed bytes field
  // whose content is `bulk`. The frame is written from the caller's memory
  // before this returns (what CUDA promises for pageable memory), after every
  // request queued before it. No reply unless the worker fails it.
  Status PostBulk(proto::CallId id, std::span<const uint8_t> fields, std::span<const uint8_t> bulk);

  // Device->host data without copies: the reply's last field (a
  // length-prefixed bytes field of exactly `len` bytes) is received straight
  // into `dst`. CallInto waits; PostInto returns at once and runs `done`
  // with the CUresult when the data has landed (on the receiver thread).
  Status CallInto(proto::CallId id, std::span<const uint8_t> payload, void* dst, size_t len, int* cu);
  Status PostInto(proto::CallId id, std::span<const uint8_t> payload, void* dst, size_t len,
                  std::function<void(int cu)> done);

  // Non-OK once the link has failed.
  Status health() const;
  uint64_t session_id() const { return session_id_; }
  // Set once, before the first host function is launched.
  void set_host_func_sink(HostFuncSink sink) {
    std::lock_guard<std::mutex> lock(mu_);
    host_func_sink_ = std::move(sink);
  }
  uint64_t bytes_sent() const { return bytes_sent_; }
  // The wire compression agreed in the handshake (kNone: plain frames).
  proto::Codec codec() const { return encoder_ != nullptr ? encoder_->codec() : proto::Codec::kNone; }
  // Closes the link without touching the socket's other owners (after fork,
  // the child must not write to its parent's link).
  void AbandonAfterFork();

 private:
  struct Waiter {
    std::atomic<bool> done{false};
    Status status;
    Reply reply;
    Completion completion;  // async replies
    // Direct receive of the reply's trailing bytes field.
    uint8_t* direct_dst = nullptr;
    size_t direct_len = 0;
    std::function<void(int cu)> direct_done;
  };
  explicit Connection(int fd) : fd_(fd) {}
  Status Enqueue(proto::CallId id, uint16_t flags, uint64_t request_id,
                 std::span<const uint8_t> payload);
  // Sends and waits for `waiter` (registered under a new request id);
  // CallWith also counts the round trip (RGPU_STATS).
  Status CallWith(proto::CallId id, std::span<const uint8_t> payload, std::shared_ptr<Waiter> waiter);
  Status WaitFor(proto::CallId id, std::span<const uint8_t> payload, std::shared_ptr<Waiter> waiter);
  // Reads the rest of a reply frame for `w` (direct or buffered).
  Status ReceiveReply(proto::FrameReader& reader, const proto::FrameHeader& h,
                      const std::shared_ptr<Waiter>& w);
  Status Flush(std::unique_lock<std::mutex>& lock);
  // Writes to the socket, or through TLS when the session has it (plain
  // TCP keeps its direct send: no lock, no copy).
  Status WriteOut(const void* p, size_t n) {
    return tls_ ? tls_->WriteAll(p, n) : net::WriteAll(fd_, p, n);
  }
  void ReceiveLoop();
  void SendLoop();
  void Fail(Status why);

  int fd_ = -1;
  std::unique_ptr<tls::Stream> tls_;  // set by Open when RGPU_TLS is on
  // Compresses host-to-device bulk frames; used by the one writer
  // (flushing_ owner) in PostBulk. Set by Open; null without a codec.
  std::unique_ptr<proto::BlockEncoder> encoder_;
  uint64_t session_id_ = 0;
  AsyncErrorSink on_async_error_;
  HostFuncSink host_func_sink_;  // GUARDED_BY(mu_)

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Status failed_;                       // GUARDED_BY(mu_)
  uint64_t next_request_id_ = 1;        // GUARDED_BY(mu_)
  std::vector<uint8_t> out_;            // GUARDED_BY(mu_): frames not yet written
  bool flushing_ = false;               // GUARDED_BY(mu_)
  bool stopping_ = false;               // GUARDED_BY(mu_)
  std::condition_variable send_cv_;     // wakes the sender when out_ fills
  std::condition_variable idle_cv_;     // a writer finished (flushing_ went false)
  std::unordered_map<uint64_t, std::shared_ptr<Waiter>> waiters_;  // GUARDED_BY(mu_)
  uint64_t bytes_sent_ = 0;
  std::thread receiver_;
  std::thread sender_;
  bool abandoned_ = false;
};

}  // namespace rgpu::client
