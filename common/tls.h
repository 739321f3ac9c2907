// TLS 1.3 over a connected TCP socket, with OpenSSL (docs/security.md).
//
// Context holds one side's settings: the server's certificate chain and key,
// or the client's trust anchors. Only TLS 1.3 is offered or accepted; no
// session tickets are issued (nothing resumes across the hand-over, and the
// supervisor must send nothing after its last message, see below).
//
// Stream is one TLS session on a socket it does not own: it never closes the
// fd, and its destructor sends nothing (call Close() for a close_notify).
// It reads and writes through send/recv with MSG_NOSIGNAL, never write(2):
// the client library lives in programs whose SIGPIPE handling is theirs.
//
// Threads: OpenSSL forbids concurrent calls on one SSL object, yet the
// client and the worker read on one thread and write on others. A blocking
// Stream therefore puts its socket in non-blocking mode and serialises every
// SSL_read/SSL_write with a mutex that is never held while waiting: a call
// that would block drops the lock and poll()s, so a reader waiting for data
// never holds up a writer, and a writer stuck on a full socket never holds up
// the reader that would drain the peer (no deadlock when both sides write
// at once). Writes go out a record (16 KiB) per lock hold.
//
// Fed mode (for the supervisor's single-threaded poll loop): the caller
// reads the socket itself and Feed()s the bytes in; the Stream never reads
// the socket, so it can never consume a byte meant for the next owner of the
// connection. Its writes are non-blocking and fail when the socket is full.
//
// OpenSSL is initialised on first use (never at load: the client library
// must do nothing before cuInit), without its configuration file (the
// client's copy of OpenSSL is linked in statically and must not load the
// host's modules) and without an atexit handler (a reader thread may still
// be inside OpenSSL when the program exits).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "common/byte_stream.h"
#include "common/status.h"

struct ssl_ctx_st;
struct ssl_st;

namespace rgpu::tls {

class Context {
 public:
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Server side: `cert_file` is a PEM certificate chain (leaf first),
  // `key_file` its PEM private key. Fails naming the file and the reason.
  static Result<std::shared_ptr<Context>> ForServer(const std::string& cert_file,
                                                    const std::string& key_file);
  // Client side: trusts the CAs in `ca` (a PEM file, or a directory of
  // c_rehash'ed certificates); empty: the system's default store (honours
  // SSL_CERT_FILE / SSL_CERT_DIR).
  static Result<std::shared_ptr<Context>> ForClient(const std::string& ca);

  ssl_ctx_st* raw() const { return ctx_; }
  bool is_server() const { return server_; }

 private:
  Context(ssl_ctx_st* ctx, bool server) : ctx_(ctx), server_(server) {}
  ssl_ctx_st* ctx_;
  bool server_;
};

class Stream final : public ByteStream {
 public:
  ~Stream() override;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Client handshake on connected socket `fd`, within `timeout_ms`. The
  // server's certificate must chain to the context's CAs and name
  // `server_name` (a DNS name, or an IP address matched against the
  // certificate's IP entries). When the server answers with something that
  // is not TLS, fails with kTransport and sets *plaintext_peer (if given):
  // the bytes are left unread on the socket for the caller to explain.
  static Result<std::unique_ptr<Stream>> Connect(std::shared_ptr<Context> ctx, int fd,
                                                 const std::string& server_name, int timeout_ms,
                                                 bool* plaintext_peer = nullptr);
  // Server handshake on connected socket `fd`, within `timeout_ms`.
  static Result<std::unique_ptr<Stream>> Accept(std::shared_ptr<Context> ctx, int fd, int timeout_ms);
  // Server session in fed mode (see above); the handshake advances in Feed.
  static Result<std::unique_ptr<Stream>> AcceptFed(std::shared_ptr<Context> ctx, int fd);

  // Fed mode: hands in bytes read from the socket, advances the handshake,
  // and appends whatever application data is complete to *plain. Fails when
  // the handshake fails (the reason says why) or the peer closed.
  Status Feed(std::span<const uint8_t> in, std::vector<uint8_t>* plain);
  bool handshake_done() const { return handshake_done_; }

  // Writes all of buf. Blocking mode: waits for room; safe alongside a
  // Read on another thread, but two writers must take turns themselves (as
  // on a socket, their bytes could interleave). Fed mode: fails at once
  // when the socket cannot take it all.
  Status WriteAll(const void* buf, size_t n);
  // Blocks for at least one byte (thread-safe). kTransport once the peer
  // closed, cleanly or not.
  Result<size_t> Read(void* buf, size_t n) override;
  // Reads exactly n bytes; fails when they have not all come within
  // timeout_ms (-1: no limit).
  Status ReadExact(void* buf, size_t n, int timeout_ms = -1);
  // True when a Read would not block, waiting at most timeout_ms (-1: forever).
  bool WaitReadable(int timeout_ms);
  // Sends close_notify: after it, the peer reads the end of this session's
  // data. Best effort within timeout_ms; the fd stays open.
  Status Close(int timeout_ms);
  // Reads the peer's close_notify, which must come next: any data before it,
  // a broken record or a TCP close first is an error.
  Status ExpectClose(int timeout_ms);

  // Lets OpenSSL fetch many records per recv (fewer system calls on bulk
  // data). Only for the last session on a socket: a read-ahead may take
  // bytes that follow this session's end.
  void EnableReadAhead();

  int fd() const { return fd_; }
  // "TLSv1.3 TLS_AES_256_GCM_SHA384": what the handshake agreed on.
  std::string Describe() const;

 private:
  Stream(std::shared_ptr<Context> ctx, ssl_st* ssl, int fd, bool fed)
      : ctx_(std::move(ctx)), ssl_(ssl), fd_(fd), fed_(fed) {}
  // Read with a limit (-1: none).
  Result<size_t> ReadSome(void* buf, size_t n, int timeout_ms);
  // Runs the blocking handshake (client or server) until done or deadline.
  Status Handshake(int timeout_ms, bool* plaintext_peer);
  // Waits for `events` on the socket at most timeout_ms (-1: forever).
  // false on timeout.
  bool Wait(short events, int timeout_ms) const;

  const std::shared_ptr<Context> ctx_;  // outlives ssl_
  ssl_st* const ssl_;
  const int fd_;
  const bool fed_;
  bool handshake_done_ = false;
  std::mutex mu_;  // every SSL_* call on ssl_; never held while waiting
};

// Initialises OpenSSL as described above; idempotent, thread-safe. Every
// entry point here calls it.
void Init();

// n bytes from OpenSSL's CSPRNG; empty on failure.
std::string RandomBytes(size_t n);

// The error text OpenSSL queued on this thread ("" when none), cleared.
std::string TakeErrors();

}  // namespace rgpu::tls
