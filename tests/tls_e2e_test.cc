// TLS end to end over the sim backend: a throwaway CA and server
// certificate are made per test run; real rgpu-server processes with
// --tls-cert/--tls-key; real programs through the client library with
// RGPU_TLS=1. Covers the programs, bulk bytes, the queue over TLS, every
// mismatch (CA, name, TLS vs plaintext both ways, token) with the line the
// user sees, and the hand-over binding (a second session without the
// supervisor's secret gets nothing).
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "common/net.h"
#include "common/tls.h"
#include "common/tls_cert.h"
#include "proto/frame.h"
#include "proto/handshake.h"
#include "proto/version.h"
#include "tests/support/process.h"

namespace rgpu::testing {
namespace {

std::string Program(const std::string& name) { return BuildDir() + "/tests/programs/" + name; }

class TlsE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/rgpu-tls-e2e-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = new std::string(tmpl);
    Result<tls::TestPki> pki = tls::MakeTestPki(*dir_, {"localhost", "127.0.0.1"});
    ASSERT_TRUE(pki.ok()) << pki.status().message();
    pki_ = new tls::TestPki(*pki);
    std::string other = *dir_ + "/other";
    ASSERT_EQ(mkdir(other.c_str(), 0700), 0);
    Result<tls::TestPki> wrong = tls::MakeTestPki(other, {"localhost", "127.0.0.1"});
    ASSERT_TRUE(wrong.ok());
    other_ca_ = new std::string(wrong->ca_cert);
  }
  static void TearDownTestSuite() {
    if (dir_ != nullptr) std::system(("rm -rf '" + *dir_ + "'").c_str());
  }
  static std::vector<std::string> TlsArgs(std::vector<std::string> more = {}) {
    std::vector<std::string> a = {"--tls-cert", pki_->server_cert, "--tls-key", pki_->server_key};
    a.insert(a.end(), more.begin(), more.end());
    return a;
  }
  static std::map<std::string, std::string> TlsEnv(const TestServer& s) {
    auto env = s.ClientEnv();
    env["RGPU_TLS"] = "1";
    env["RGPU_TLS_CA"] = pki_->ca_cert;
    return env;
  }

  static std::string* dir_;
  static tls::TestPki* pki_;
  static std::string* other_ca_;
};
std::string* TlsE2E::dir_ = nullptr;
tls::TestPki* TlsE2E::pki_ = nullptr;
std::string* TlsE2E::other_ca_ = nullptr;

TEST_F(TlsE2E, EveryProgramPassesOverTls) {
  std::vector<std::string> programs = E2EPrograms();
  ASSERT_GE(programs.size(), 4u);
  TestServer server(TlsArgs());
  for (const std::string& p : programs) {
    RunResult r = RunProgram({p}, TlsEnv(server), 120);
    EXPECT_EQ(r.exit_code, 0) << p << "\n" << r.out << r.err << "\nserver:\n" << server.Log();
  }
  // Named by host name rather than address, as a user would.
  auto env = TlsEnv(server);
  env["RGPU_SERVER"] = "localhost:" + std::to_string(server.port());
  RunResult r = RunProgram({Program("link_loss"), "0.1"}, env, 30);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST_F(TlsE2E, BulkCopyOverTlsIsExact) {
  TestServer server(TlsArgs());
  RunResult tls = RunProgram({Program("bulk_copy"), "64"}, TlsEnv(server), 120);
  ASSERT_EQ(tls.exit_code, 0) << tls.out << tls.err << server.Log();
  EXPECT_NE(tls.out.find("OK bulk_copy 64 MiB checksum"), std::string::npos) << tls.out;
}

TEST_F(TlsE2E, AnotherCaFailsAtInitWithAReasonAndTheServerGoesOn) {
  TestServer server(TlsArgs());
  auto env = TlsEnv(server);
  env["RGPU_TLS_CA"] = *other_ca_;
  RunResult r = RunProgram({Program("link_loss"), "0.1"}, env, 30);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("server certificate rejected: unable to get local issuer certificate"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("RGPU_TLS_CA=" + *other_ca_), std::string::npos) << r.err;
  // No CA named: the system store does not know our test CA either.
  env.erase("RGPU_TLS_CA");
  r = RunProgram({Program("link_loss"), "0.1"}, env, 30);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("the system store"), std::string::npos) << r.err;
  r = RunProgram({Program("link_loss"), "0.1"}, TlsEnv(server), 30);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
}

TEST_F(TlsE2E, AnotherServerNameIsRejected) {
  TestServer server(TlsArgs());
  auto env = TlsEnv(server);
  env["RGPU_TLS_SERVER_NAME"] = "gpu.example.com";
  RunResult r = RunProgram({Program("link_loss"), "0.1"}, env, 30);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("hostname mismatch"), std::string::npos) << r.err;
  env["RGPU_TLS_SERVER_NAME"] = "localhost";  // the override, used rightly
  r = RunProgram({Program("link_loss"), "0.1"}, env, 30);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST_F(TlsE2E, PlaintextClientIsToldToUseTls) {
  TestServer server(TlsArgs());
  RunResult r = RunProgram({Program("link_loss"), "0.1"}, server.ClientEnv(), 30);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("this server requires TLS: set RGPU_TLS=1"), std::string::npos) << r.err;
  r = RunProgram({Program("link_loss"), "0.1"}, TlsEnv(server), 30);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
}

TEST_F(TlsE2E, TlsClientIsToldThePlaintextServerHasNone) {
  TestServer server;
  RunResult r = RunProgram({Program("link_loss"), "0.1"}, TlsEnv(server), 30);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("refused TLS: this server does not use TLS"), std::string::npos) << r.err;
  r = RunProgram({Program("link_loss"), "0.1"}, server.ClientEnv(), 30);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST_F(TlsE2E, WrongTokenIsRefusedInsideTls) {
  std::string token_file = *dir_ + "/token";
  const std::string token = "tls-token-0123456789abcdef";
  FILE* f = fopen(token_file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs(token.c_str(), f);
  fclose(f);
  TestServer server(TlsArgs({"--token-file", token_file}));
  auto env = TlsEnv(server);
  env["RGPU_TOKEN"] = "not-the-token-0123456789";
  RunResult r = RunProgram({Program("link_loss"), "0.1"}, env, 30);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("wrong or missing token"), std::string::npos) << r.err;
  env["RGPU_TOKEN"] = token;
  r = RunProgram({Program("link_loss"), "0.1"}, env, 30);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST_F(TlsE2E, QueuedSessionGetsItsPositionThenRuns) {
  TestServer server(TlsArgs({"--sim-gpus", "1"}));
  Child holder({Program("link_loss"), "2"}, TlsEnv(server));
  ASSERT_TRUE(holder.WaitForOutput("READY", 20)) << server.Log();
  Child waiter({Program("link_loss"), "0.2"}, TlsEnv(server));
  bool queued = false;
  for (int i = 0; i < 500 && !queued; ++i) {
    queued = server.StatusJson().find("\"position\":1") != std::string::npos;
    if (!queued) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(queued) << server.StatusJson();
  RunResult h = holder.Wait(30), w = waiter.Wait(30);
  EXPECT_EQ(h.exit_code, 0) << h.err;
  EXPECT_EQ(w.exit_code, 0) << w.out << w.err << server.Log();
  EXPECT_NE(w.err.find("position 1 in the queue"), std::string::npos) << w.err;
  EXPECT_NE(w.out.find("READY"), std::string::npos);
}

TEST_F(TlsE2E, SandboxedWorkersServeTls) {
  if (geteuid() != 0) GTEST_SKIP() << "the sandbox drops to another user only when started as root";
  TestServer server(TlsArgs({"--sandbox", "on"}));
  RunResult r = RunProgram({Program("bulk_copy"), "8"}, TlsEnv(server), 60);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
}

// Speaks the protocol by hand: the supervisor's session and hand-over, then
// a second session that binds with `secret` (or the one handed over).
struct RawResult {
  bool handed_over = false;
  std::string reply_or_error;  // the worker's HelloReply message, or why nothing came
};
RawResult RawClient(const TestServer& server, const std::string& ca, const std::string* forged_secret) {
  RawResult out;
  auto fail = [&](const std::string& why) {
    out.reply_or_error = why;
    return out;
  };
  Result<int> fd = net::Connect({"127.0.0.1", static_cast<uint16_t>(server.port())}, 5000);
  if (!fd.ok()) return fail(fd.status().message());
  Result<std::shared_ptr<tls::Context>> ctx = tls::Context::ForClient(ca);
  Result<std::unique_ptr<tls::Stream>> first = tls::Stream::Connect(*ctx, *fd, "127.0.0.1", 5000);
  if (!first.ok()) return fail(first.status().message());
  auto hello = proto::EncodeHelloFrame({proto::kHelloMagic, proto::kProtocolVersion, "", "raw@test pid=1", 1});
  if (!(*first)->WriteAll(hello.data(), hello.size()).ok()) return fail("write hello");
  auto read_frame = [](tls::Stream& s, proto::FrameHeader* h, std::vector<uint8_t>* body) {
    uint8_t hb[proto::kFrameHeaderSize];
    RGPU_RETURN_IF_ERROR(s.ReadExact(hb, sizeof hb, 5000));
    RGPU_RETURN_IF_ERROR(proto::DecodeFrameHeader(hb, 8192, h));
    body->resize(h->length);
    return s.ReadExact(body->data(), body->size(), 5000);
  };
  proto::FrameHeader h;
  std::vector<uint8_t> body;
  do {  // queue positions first, while the warm worker starts
    if (Status st = read_frame(**first, &h, &body); !st.ok()) return fail(st.message());
  } while ((h.flags & proto::kEvent) && h.call == 3);
  std::string secret;
  if (h.call != proto::kEventHandOver || !proto::DecodeHandOver(body, &secret).ok())
    return fail("no hand-over: frame call " + std::to_string(h.call) + " flags " + std::to_string(h.flags));
  out.handed_over = true;
  if (Status st = (*first)->ExpectClose(5000); !st.ok()) return fail(st.message());
  first->reset();
  Result<std::unique_ptr<tls::Stream>> second = tls::Stream::Connect(*ctx, *fd, "127.0.0.1", 5000);
  if (!second.ok()) return fail(second.status().message());
  auto bind = proto::EncodeBindFrame(forged_secret != nullptr ? *forged_secret : secret);
  if (!(*second)->WriteAll(bind.data(), bind.size()).ok()) return fail("write bind");
  if (Status st = read_frame(**second, &h, &body); !st.ok()) return fail(st.message());
  proto::HelloReply reply;
  if (!proto::DecodeHelloReply(body, &reply).ok()) return fail("bad reply");
  out.reply_or_error = reply.status == proto::HelloStatus::kAccepted ? "accepted" : reply.message;
  close(*fd);
  return out;
}

TEST_F(TlsE2E, SecondSessionMustBindWithTheSupervisorsSecret) {
  TestServer server(TlsArgs());
  const std::string forged(proto::kHandOverSecretSize, 'x');
  RawResult r = RawClient(server, pki_->ca_cert, &forged);
  EXPECT_TRUE(r.handed_over) << r.reply_or_error;
  EXPECT_NE(r.reply_or_error.find("closed"), std::string::npos) << r.reply_or_error;
  for (int i = 0; i < 200 && server.Log().find("wrong secret") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_NE(server.Log().find("bind with the wrong secret"), std::string::npos) << server.Log();
  // The one it was given works, and the server serves on.
  r = RawClient(server, pki_->ca_cert, nullptr);
  EXPECT_EQ(r.reply_or_error, "accepted");
  RunResult p = RunProgram({Program("link_loss"), "0.1"}, TlsEnv(server), 30);
  EXPECT_EQ(p.exit_code, 0) << p.err << server.Log();
}

TEST_F(TlsE2E, BadCertificateFilesStopTheServerWithTheReason) {
  RunResult r = RunProgram({ServerBinary(), "--listen", "127.0.0.1:0", "--backend", "sim", "--tls-cert",
                            pki_->server_cert, "--tls-key", pki_->ca_cert},
                           {}, 20);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("TLS key " + pki_->ca_cert), std::string::npos) << r.err;
  r = RunProgram({ServerBinary(), "--listen", "127.0.0.1:0", "--backend", "sim", "--tls-cert", pki_->server_cert},
                 {}, 20);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--tls-cert and --tls-key go together"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace rgpu::testing
