// common/tls.h over socket pairs: handshakes and their refusals (wrong CA,
// wrong name, TLS 1.2, plaintext peer), full-duplex bulk transfer from
// separate reader and writer threads (the client's and worker's pattern),
// and two sessions in a row on one socket (the supervisor's hand-over).
#include "common/tls.h"

#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <future>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/tls_cert.h"

namespace rgpu::tls {
namespace {

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rgpu-tls-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Result<TestPki> pki = MakeTestPki(dir_, {"localhost", "127.0.0.1"});
    ASSERT_TRUE(pki.ok()) << pki.status().message();
    pki_ = *pki;
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_), 0);
    Result<std::shared_ptr<Context>> s = Context::ForServer(pki_.server_cert, pki_.server_key);
    ASSERT_TRUE(s.ok()) << s.status().message();
    server_ctx_ = *s;
    Result<std::shared_ptr<Context>> c = Context::ForClient(pki_.ca_cert);
    ASSERT_TRUE(c.ok()) << c.status().message();
    client_ctx_ = *c;
  }
  void TearDown() override {
    for (int fd : fds_)
      if (fd >= 0) close(fd);
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  // Handshakes both ends; the server on a thread.
  void Pair(std::unique_ptr<Stream>* client, std::unique_ptr<Stream>* server, const std::string& name = "localhost") {
    auto accepted = std::async(std::launch::async, [&] { return Stream::Accept(server_ctx_, fds_[1], 5000); });
    Result<std::unique_ptr<Stream>> c = Stream::Connect(client_ctx_, fds_[0], name, 5000);
    Result<std::unique_ptr<Stream>> s = accepted.get();
    ASSERT_TRUE(c.ok()) << c.status().message();
    ASSERT_TRUE(s.ok()) << s.status().message();
    *client = std::move(*c);
    *server = std::move(*s);
  }

  std::string dir_;
  TestPki pki_;
  int fds_[2] = {-1, -1};
  std::shared_ptr<Context> server_ctx_, client_ctx_;
};

std::vector<uint8_t> Pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return v;
}

TEST_F(TlsTest, HandshakeAgreesOnTls13) {
  std::unique_ptr<Stream> c, s;
  Pair(&c, &s);
  EXPECT_EQ(c->Describe().rfind("TLSv1.3 ", 0), 0u) << c->Describe();
  const char msg[] = "hello";
  ASSERT_TRUE(c->WriteAll(msg, sizeof msg).ok());
  char got[sizeof msg];
  ASSERT_TRUE(s->ReadExact(got, sizeof got).ok());
  EXPECT_STREQ(got, msg);
}

TEST_F(TlsTest, IpAddressesAreMatchedAgainstTheCertificate) {
  std::unique_ptr<Stream> c, s;
  Pair(&c, &s, "127.0.0.1");
  ASSERT_NE(c, nullptr);
}

TEST_F(TlsTest, FullDuplexBulkFromSeparateThreadsDoesNotDeadlock) {
  std::unique_ptr<Stream> c, s;
  Pair(&c, &s);
  // Both sides write 32 MiB at once while their own reader threads drain
  // the other direction: a lock held across a blocked write would hang here.
  const size_t n = 32u << 20;
  std::vector<uint8_t> a = Pattern(n, 1), b = Pattern(n, 2);
  auto pump = [n](Stream* st, const std::vector<uint8_t>& out, std::vector<uint8_t>* in) {
    std::thread reader([&] { EXPECT_TRUE(st->ReadExact(in->data(), n).ok()); });
    // Uneven pieces, as frames are.
    for (size_t at = 0; at < n;) {
      size_t piece = std::min(n - at, static_cast<size_t>(1 + (at * 7919) % (3 << 20)));
      EXPECT_TRUE(st->WriteAll(out.data() + at, piece).ok());
      at += piece;
    }
    reader.join();
  };
  std::vector<uint8_t> at_server(n), at_client(n);
  auto done = std::async(std::launch::async, [&] { pump(s.get(), b, &at_server); });
  pump(c.get(), a, &at_client);
  ASSERT_EQ(done.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_TRUE(at_server == a);
  EXPECT_TRUE(at_client == b);
}

TEST_F(TlsTest, AnotherCaIsRejectedWithTheReason) {
  std::string other = dir_ + "/other";
  ASSERT_EQ(mkdir(other.c_str(), 0700), 0);
  Result<TestPki> pki = MakeTestPki(other, {"localhost"});
  ASSERT_TRUE(pki.ok());
  Result<std::shared_ptr<Context>> wrong = Context::ForClient(pki->ca_cert);
  ASSERT_TRUE(wrong.ok());
  auto accepted = std::async(std::launch::async, [&] { return Stream::Accept(server_ctx_, fds_[1], 5000); });
  Result<std::unique_ptr<Stream>> c = Stream::Connect(*wrong, fds_[0], "localhost", 5000);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("server certificate rejected: unable to get local issuer certificate"),
            std::string::npos)
      << c.status().message();
  EXPECT_FALSE(accepted.get().ok());
}

TEST_F(TlsTest, AnotherHostNameIsRejected) {
  auto accepted = std::async(std::launch::async, [&] { return Stream::Accept(server_ctx_, fds_[1], 5000); });
  Result<std::unique_ptr<Stream>> c = Stream::Connect(client_ctx_, fds_[0], "gpu.example.com", 5000);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("hostname mismatch"), std::string::npos) << c.status().message();
  (void)accepted.get();
}

TEST_F(TlsTest, Tls12ClientIsRefused) {
  SSL_CTX* old = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_max_proto_version(old, TLS1_2_VERSION);
  SSL_CTX_set_verify(old, SSL_VERIFY_NONE, nullptr);
  SSL* ssl = SSL_new(old);
  SSL_set_fd(ssl, fds_[0]);
  auto accepted = std::async(std::launch::async, [&] { return Stream::Accept(server_ctx_, fds_[1], 5000); });
  EXPECT_NE(SSL_connect(ssl), 1);
  Result<std::unique_ptr<Stream>> s = accepted.get();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("unsupported protocol"), std::string::npos) << s.status().message();
  SSL_free(ssl);
  SSL_CTX_free(old);
}

TEST_F(TlsTest, PlaintextAnswerIsRecognisedAndLeftUnread) {
  std::thread plain([&] {
    char buf[512];
    (void)!read(fds_[1], buf, sizeof buf);  // the ClientHello
    const char reply[] = "\x20\0\0\0plaintext rgpu reply";
    (void)!write(fds_[1], reply, sizeof reply);
  });
  bool plaintext = false;
  Result<std::unique_ptr<Stream>> c = Stream::Connect(client_ctx_, fds_[0], "localhost", 5000, &plaintext);
  plain.join();
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(plaintext);
  EXPECT_NE(c.status().message().find("does not use TLS"), std::string::npos);
  char first = 0;
  ASSERT_EQ(recv(fds_[0], &first, 1, 0), 1);
  EXPECT_EQ(first, '\x20');
}

// The supervisor's pattern: a fed server session reads the client's first
// message, answers, ends with close_notify; then a second, independent
// session runs on the same socket.
TEST_F(TlsTest, SecondSessionFollowsAFedSessionOnOneSocket) {
  Result<std::unique_ptr<Stream>> fed = Stream::AcceptFed(server_ctx_, fds_[1]);
  ASSERT_TRUE(fed.ok());
  auto client = std::async(std::launch::async, [&]() -> std::string {
    Result<std::unique_ptr<Stream>> c = Stream::Connect(client_ctx_, fds_[0], "localhost", 5000);
    if (!c.ok()) return "connect: " + c.status().message();
    if (!(*c)->WriteAll("hello", 5).ok()) return "write";
    char secret[6] = {};
    if (!(*c)->ReadExact(secret, 5).ok()) return "read";
    if (Status st = (*c)->ExpectClose(5000); !st.ok()) return "close: " + st.message();
    c->reset();
    Result<std::unique_ptr<Stream>> c2 = Stream::Connect(client_ctx_, fds_[0], "localhost", 5000);
    if (!c2.ok()) return "connect 2: " + c2.status().message();
    if (!(*c2)->WriteAll(secret, 5).ok()) return "write 2";
    return "ok";
  });
  std::vector<uint8_t> plain;
  while (plain.size() < 5) {
    uint8_t buf[4096];
    ssize_t n = recv(fds_[1], buf, sizeof buf, 0);
    if (n < 0 && errno == EAGAIN) {
      usleep(1000);
      continue;
    }
    ASSERT_GT(n, 0);
    ASSERT_TRUE((*fed)->Feed({buf, static_cast<size_t>(n)}, &plain).ok());
  }
  EXPECT_EQ(std::string(plain.begin(), plain.end()), "hello");
  ASSERT_TRUE((*fed)->WriteAll("s3cr7", 5).ok());
  ASSERT_TRUE((*fed)->Close(1000).ok());
  fed->reset();
  Result<std::unique_ptr<Stream>> s2 = Stream::Accept(server_ctx_, fds_[1], 5000);
  ASSERT_TRUE(s2.ok()) << s2.status().message();
  char got[6] = {};
  ASSERT_TRUE((*s2)->ReadExact(got, 5).ok());
  EXPECT_STREQ(got, "s3cr7");
  EXPECT_EQ(client.get(), "ok");
}

TEST_F(TlsTest, ReadFailsWhenThePeerGoes) {
  std::unique_ptr<Stream> c, s;
  Pair(&c, &s);
  close(fds_[1]);
  fds_[1] = -1;
  char b;
  Result<size_t> r = c->Read(&b, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kTransport);
}

TEST_F(TlsTest, BadKeyOrCertificateFilesAreNamed) {
  Result<std::shared_ptr<Context>> r = Context::ForServer(dir_ + "/missing.pem", pki_.server_key);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("missing.pem"), std::string::npos) << r.status().message();
  r = Context::ForServer(pki_.server_cert, pki_.ca_cert);  // a certificate is no key
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("TLS key"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace rgpu::tls
