#include "common/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>

namespace rgpu::tls {
namespace {

// Plaintext per SSL_write call; a record is at most 16 KiB, and with
// SSL_MODE_ENABLE_PARTIAL_WRITE each call returns after one record anyway.
constexpr size_t kWriteChunk = 1 << 20;
// With read-ahead, one recv fetches many records.
constexpr size_t kReadBuffer = 256 << 10;
// A poll that outlives this is retried: a safety net, never the normal wake-up.
constexpr int kMaxPollMs = 1000;

// The socket BIO: send(MSG_NOSIGNAL)/recv on a fd we do not own. OpenSSL's
// own socket BIO uses write(2), which raises SIGPIPE in the host program
// when the server goes away, and would close the fd on free.
struct SockData {
  int fd;
  int last_errno;
  // Client handshake: look at the server's first byte before OpenSSL takes
  // it. A TLS answer starts with a record type, handshake (22) or alert
  // (21); anything else is a plaintext rgpu server answering our
  // ClientHello, whose reply stays on the socket for the caller to read.
  bool check_first_byte;
  bool plaintext_peer;
};

int SockWrite(BIO* b, const char* buf, int len) {
  auto* d = static_cast<SockData*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  ssize_t n;
  do n = send(d->fd, buf, static_cast<size_t>(len), MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    d->last_errno = errno;
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(b);
  }
  return static_cast<int>(n);
}

int SockRead(BIO* b, char* buf, int len) {
  auto* d = static_cast<SockData*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  ssize_t n;
  if (d->check_first_byte) {
    uint8_t first = 0;
    do n = recv(d->fd, &first, 1, MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n == 1 && first != 21 && first != 22) {
      d->plaintext_peer = true;
      return -1;
    }
    if (n == 1) d->check_first_byte = false;
  }
  do n = recv(d->fd, buf, static_cast<size_t>(len), 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    d->last_errno = errno;
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(b);
  }
  return static_cast<int>(n);
}

long SockCtrl(BIO* b, int cmd, long, void* ptr) {
  auto* d = static_cast<SockData*>(BIO_get_data(b));
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_C_GET_FD:
      if (ptr != nullptr) *static_cast<int*>(ptr) = d->fd;
      return d->fd;
    default:
      return 0;
  }
}

int SockDestroy(BIO* b) {
  delete static_cast<SockData*>(BIO_get_data(b));
  BIO_set_data(b, nullptr);
  return 1;
}

BIO* NewSockBio(int fd) {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "rgpu socket");
    BIO_meth_set_write(m, SockWrite);
    BIO_meth_set_read(m, SockRead);
    BIO_meth_set_ctrl(m, SockCtrl);
    BIO_meth_set_destroy(m, SockDestroy);
    return m;
  }();
  BIO* b = BIO_new(method);
  if (b == nullptr) return nullptr;
  BIO_set_data(b, new SockData{fd, 0, false, false});
  BIO_set_init(b, 1);
  return b;
}

// A new SSL on socket `fd`: it writes to the socket; it reads from the socket
// too, or, when `fed`, from a memory BIO its owner fills (the supervisor
// reads the socket itself so it never takes bytes beyond its own session).
Result<SSL*> NewSsl(Context& ctx, int fd, bool fed) {
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx.raw());
  BIO* in = ssl == nullptr || !fed ? nullptr : BIO_new(BIO_s_mem());
  BIO* out = ssl == nullptr || (fed && in == nullptr) ? nullptr : NewSockBio(fd);
  if (out == nullptr) {
    BIO_free(in);
    SSL_free(ssl);
    return Status::Internal("TLS: SSL_new: " + TakeErrors());
  }
  SSL_set_bio(ssl, fed ? in : out, out);
  return ssl;
}

// The socket BIO's state (the write side: in fed mode the read side is a
// memory BIO).
SockData* Sock(ssl_st* ssl) {
  BIO* b = SSL_get_wbio(ssl);
  return b == nullptr ? nullptr : static_cast<SockData*>(BIO_get_data(b));
}

int SockErrno(ssl_st* ssl) {
  SockData* d = Sock(ssl);
  return d == nullptr ? 0 : d->last_errno;
}

void SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0 && !(flags & O_NONBLOCK)) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int MsLeft(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<long long>(0, left.count()));
}

Status CommonSetup(SSL_CTX* ctx) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
    return Status::Internal("TLS: cannot restrict to TLS 1.3: " + TakeErrors());
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  return {};
}

// Why a session failed after `err` from SSL_get_error: the peer's close,
// the socket's errno, or OpenSSL's queued reasons.
Status Failure(ssl_st* ssl, int err, const std::string& what) {
  std::string errs = TakeErrors();
  if (err == SSL_ERROR_ZERO_RETURN) return Status::Transport(what + ": connection closed by peer (TLS close_notify)");
  if (err == SSL_ERROR_SYSCALL && errs.empty()) {
    int e = SockErrno(ssl);
    if (e != 0 && e != EAGAIN && e != EWOULDBLOCK) return Status::Errno(Code::kTransport, what, e);
    return Status::Transport(what + ": connection closed by peer");
  }
  return Status::Transport(what + ": " + (errs.empty() ? "TLS error " + std::to_string(err) : errs));
}

}  // namespace

void Init() {
  static std::once_flag once;
  std::call_once(once, [] {
    OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT | OPENSSL_INIT_NO_LOAD_CONFIG, nullptr);
  });
}

std::string RandomBytes(size_t n) {
  Init();
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) return "";
  return out;
}

std::string TakeErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    char buf[256];
    if (reason == nullptr) {
      ERR_error_string_n(e, buf, sizeof buf);
      reason = buf;
    }
    if (out.find(reason) != std::string::npos) continue;
    if (!out.empty()) out += "; ";
    out += reason;
  }
  return out;
}

Context::~Context() { SSL_CTX_free(ctx_); }

Result<std::shared_ptr<Context>> Context::ForServer(const std::string& cert_file, const std::string& key_file) {
  Init();
  ERR_clear_error();
  SSL_CTX* raw = SSL_CTX_new(TLS_server_method());
  if (raw == nullptr) return Status::Internal("TLS: SSL_CTX_new: " + TakeErrors());
  std::shared_ptr<Context> ctx(new Context(raw, true));
  RGPU_RETURN_IF_ERROR(CommonSetup(raw));
  // No tickets: nothing resumes, and the supervisor's session must end with
  // its own last message (a ticket sent later would land in the next session).
  SSL_CTX_set_num_tickets(raw, 0);
  SSL_CTX_set_options(raw, SSL_OP_NO_TICKET);
  if (SSL_CTX_use_certificate_chain_file(raw, cert_file.c_str()) != 1)
    return Status::Invalid("TLS certificate " + cert_file + ": " + TakeErrors());
  if (SSL_CTX_use_PrivateKey_file(raw, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    return Status::Invalid("TLS key " + key_file + ": " + TakeErrors());
  if (SSL_CTX_check_private_key(raw) != 1)
    return Status::Invalid("TLS key " + key_file + " does not match certificate " + cert_file + ": " + TakeErrors());
  return ctx;
}

Result<std::shared_ptr<Context>> Context::ForClient(const std::string& ca) {
  Init();
  ERR_clear_error();
  SSL_CTX* raw = SSL_CTX_new(TLS_client_method());
  if (raw == nullptr) return Status::Internal("TLS: SSL_CTX_new: " + TakeErrors());
  std::shared_ptr<Context> ctx(new Context(raw, false));
  RGPU_RETURN_IF_ERROR(CommonSetup(raw));
  SSL_CTX_set_verify(raw, SSL_VERIFY_PEER, nullptr);
  if (ca.empty()) {
    if (SSL_CTX_set_default_verify_paths(raw) != 1)
      return Status::Invalid("TLS: cannot load the system's CA store: " + TakeErrors());
    return ctx;
  }
  struct stat st {};
  if (stat(ca.c_str(), &st) != 0) return Status::Errno(Code::kInvalid, "TLS CA " + ca, errno);
  bool dir = S_ISDIR(st.st_mode);
  if (SSL_CTX_load_verify_locations(raw, dir ? nullptr : ca.c_str(), dir ? ca.c_str() : nullptr) != 1)
    return Status::Invalid("TLS CA " + ca + ": " + TakeErrors());
  return ctx;
}

Stream::~Stream() {
  std::lock_guard<std::mutex> lock(mu_);
  SSL_free(ssl_);
}

Result<std::unique_ptr<Stream>> Stream::Connect(std::shared_ptr<Context> ctx, int fd,
                                                const std::string& server_name, int timeout_ms,
                                                bool* plaintext_peer) {
  if (plaintext_peer != nullptr) *plaintext_peer = false;
  Result<SSL*> made = NewSsl(*ctx, fd, /*fed=*/false);
  if (!made.ok()) return made.take_status();
  SSL* ssl = *made;
  std::unique_ptr<Stream> s(new Stream(std::move(ctx), ssl, fd, false));
  SSL_set_connect_state(ssl);
  // The certificate must name the host we meant: a DNS name, or an IP
  // address (matched against its IP entries, and sent as no SNI).
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  in6_addr ip;
  bool is_ip = inet_pton(AF_INET, server_name.c_str(), &ip) == 1 || inet_pton(AF_INET6, server_name.c_str(), &ip) == 1;
  if (is_ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str()) != 1)
      return Status::Invalid("TLS: bad server address '" + server_name + "'");
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_host(param, server_name.c_str(), 0) != 1 ||
        SSL_set_tlsext_host_name(ssl, server_name.c_str()) != 1)
      return Status::Invalid("TLS: bad server name '" + server_name + "'");
  }
  SetNonBlocking(fd);
  Sock(ssl)->check_first_byte = plaintext_peer != nullptr;
  RGPU_RETURN_IF_ERROR(s->Handshake(timeout_ms, plaintext_peer));
  return s;
}

Result<std::unique_ptr<Stream>> Stream::Accept(std::shared_ptr<Context> ctx, int fd, int timeout_ms) {
  Result<SSL*> made = NewSsl(*ctx, fd, /*fed=*/false);
  if (!made.ok()) return made.take_status();
  SSL* ssl = *made;
  std::unique_ptr<Stream> s(new Stream(std::move(ctx), ssl, fd, false));
  SSL_set_accept_state(ssl);
  SetNonBlocking(fd);
  RGPU_RETURN_IF_ERROR(s->Handshake(timeout_ms, nullptr));
  return s;
}

Result<std::unique_ptr<Stream>> Stream::AcceptFed(std::shared_ptr<Context> ctx, int fd) {
  Result<SSL*> made = NewSsl(*ctx, fd, /*fed=*/true);
  if (!made.ok()) return made.take_status();
  SSL* ssl = *made;
  SSL_set_accept_state(ssl);
  SetNonBlocking(fd);
  return std::unique_ptr<Stream>(new Stream(std::move(ctx), ssl, fd, true));
}

void Stream::EnableReadAhead() {
  std::lock_guard<std::mutex> lock(mu_);
  SSL_set_default_read_buffer_len(ssl_, kReadBuffer);
  SSL_set_read_ahead(ssl_, 1);
}

bool Stream::Wait(short events, int timeout_ms) const {
  pollfd p{fd_, events, 0};
  int rc;
  do rc = poll(&p, 1, timeout_ms);
  while (rc < 0 && errno == EINTR);
  return rc != 0;  // ready, hung up or failed: the next SSL call says which
}

Status Stream::Handshake(int timeout_ms, bool* plaintext_peer) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int err;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ERR_clear_error();
      int r = SSL_do_handshake(ssl_);
      if (r == 1) {
        handshake_done_ = true;
        return {};
      }
      err = SSL_get_error(ssl_, r);
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        if (Sock(ssl_)->plaintext_peer) {
          TakeErrors();
          if (plaintext_peer != nullptr) *plaintext_peer = true;
          return Status::Transport("the server answered in plaintext: it does not use TLS");
        }
        long verify = SSL_get_verify_result(ssl_);
        if (!ctx_->is_server() && verify != X509_V_OK) {
          TakeErrors();
          return Status::Transport(std::string("server certificate rejected: ") +
                                   X509_verify_cert_error_string(verify));
        }
        return Failure(ssl_, err, "TLS handshake");
      }
    }
    short events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    if (!Wait(events, MsLeft(deadline)))
      return Status::Transport("TLS handshake: no answer within " + std::to_string(timeout_ms) + " ms");
  }
}

Status Stream::Feed(std::span<const uint8_t> in, std::vector<uint8_t>* plain) {
  std::lock_guard<std::mutex> lock(mu_);
  ERR_clear_error();
  if (!in.empty() && BIO_write(SSL_get_rbio(ssl_), in.data(), static_cast<int>(in.size())) != static_cast<int>(in.size()))
    return Status::Internal("TLS: buffering received bytes failed");
  if (!handshake_done_) {
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      int err = SSL_get_error(ssl_, r);
      if (err == SSL_ERROR_WANT_READ) return {};
      if (err == SSL_ERROR_WANT_WRITE) return Status::Transport("TLS handshake: the client does not read");
      return Failure(ssl_, err, "TLS handshake");
    }
    handshake_done_ = true;
  }
  uint8_t buf[16384];
  for (;;) {
    int r = SSL_read(ssl_, buf, sizeof buf);
    if (r > 0) {
      plain->insert(plain->end(), buf, buf + r);
      continue;
    }
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ) return {};
    return Failure(ssl_, err, "TLS read");
  }
}

Status Stream::WriteAll(const void* buf, size_t n) {
  const auto* p = static_cast<const uint8_t*>(buf);
  while (n > 0) {
    int err;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ERR_clear_error();
      // After a WANT_WRITE the same call is repeated with the same length.
      int r = SSL_write(ssl_, p, static_cast<int>(std::min(n, kWriteChunk)));
      if (r > 0) {
        p += r;
        n -= static_cast<size_t>(r);
        continue;
      }
      err = SSL_get_error(ssl_, r);
      if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) return Failure(ssl_, err, "write");
    }
    if (err == SSL_ERROR_WANT_WRITE && fed_) return Status::Transport("write: the peer does not read");
    Wait(err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, kMaxPollMs);
  }
  return {};
}

Result<size_t> Stream::Read(void* buf, size_t n) { return ReadSome(buf, n, -1); }

Result<size_t> Stream::ReadSome(void* buf, size_t n, int timeout_ms) {
  if (fed_) return Status::Internal("TLS: Read on a fed stream");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int err;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ERR_clear_error();
      int r = SSL_read(ssl_, buf, static_cast<int>(std::min<size_t>(n, INT_MAX)));
      if (r > 0) return static_cast<size_t>(r);
      err = SSL_get_error(ssl_, r);
      if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) return Failure(ssl_, err, "read");
    }
    int wait = kMaxPollMs;
    if (timeout_ms >= 0) {
      wait = std::min(wait, MsLeft(deadline));
      if (wait == 0) return Status::Transport("read: nothing within " + std::to_string(timeout_ms) + " ms");
    }
    Wait(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, wait);
  }
}

Status Stream::ReadExact(void* buf, size_t n, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    int left = timeout_ms < 0 ? -1 : MsLeft(deadline);
    Result<size_t> r = ReadSome(p, n, left);
    if (!r.ok()) return r.take_status();
    p += *r;
    n -= *r;
  }
  return {};
}

bool Stream::WaitReadable(int timeout_ms) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (SSL_has_pending(ssl_)) return true;
  }
  pollfd p{fd_, POLLIN, 0};
  int rc;
  do rc = poll(&p, 1, timeout_ms);
  while (rc < 0 && errno == EINTR);
  return rc > 0;
}

Status Stream::Close(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int err;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ERR_clear_error();
      int r = SSL_shutdown(ssl_);
      if (r >= 0) return {};  // 0: ours is sent; the peer's is not awaited
      err = SSL_get_error(ssl_, r);
      if (err != SSL_ERROR_WANT_WRITE || fed_) return Failure(ssl_, err, "TLS close");
    }
    if (MsLeft(deadline) == 0 || !Wait(POLLOUT, MsLeft(deadline)))
      return Status::Transport("TLS close: the peer does not read");
  }
}

Status Stream::ExpectClose(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int err;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ERR_clear_error();
      uint8_t b;
      int r = SSL_read(ssl_, &b, 1);
      if (r > 0) return Status::Protocol("TLS: data where the end of the session was expected");
      err = SSL_get_error(ssl_, r);
      if (err == SSL_ERROR_ZERO_RETURN) return {};
      if (err != SSL_ERROR_WANT_READ) return Failure(ssl_, err, "TLS end of session");
    }
    if (MsLeft(deadline) == 0 || !Wait(POLLIN, MsLeft(deadline)))
      return Status::Transport("TLS: the end of the session did not come within " + std::to_string(timeout_ms) + " ms");
  }
}

std::string Stream::Describe() const {
  return std::string(SSL_get_version(ssl_)) + " " + SSL_get_cipher_name(ssl_);
}

}  // namespace rgpu::tls
