// Idle detach and reattach over the sim backend (docs/time-slicing.md): an
// idle session gives its GPU to one that waits and gets it back with its
// data intact at the same pointers; --detach-idle=always and never; eight
// processes sharing one GPU, all correct, served in FIFO order.
#include <signal.h>

#include <chrono>
#include <memory>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace rgpu::testing {
namespace {

std::string Program(const std::string& name) { return BuildDir() + "/tests/programs/" + name; }

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Polls until `pred` holds (10 ms steps) or `seconds` pass.
template <class F>
bool PollFor(double seconds, F pred) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

TEST(Detach, IdleSessionYieldsToAWaitingOneAndResumesIntact) {
  TestServer server({"--sim-gpus", "1", "--idle-timeout", "0.2"});
  Child a({Program("swap_check"), "2", "3"}, server.ClientEnv());
  ASSERT_TRUE(a.WaitForOutput("READY", 20));
  // B waits for the only GPU; A goes idle, is detached, and B runs.
  Child b({Program("wipe_check")}, server.ClientEnv());
  ASSERT_TRUE(PollFor(10, [&] { return server.Log().find("detached (") != std::string::npos; })) << server.Log();
  // A stays detached until its idle time ends (3 s after READY).
  std::string js;
  EXPECT_TRUE(PollFor(2, [&] {
    js = server.StatusJson();
    return js.find("\"state\":\"detached\"") != std::string::npos;
  })) << js;
  EXPECT_EQ(js.find("\"bytes_swapped\":0,\"detached_s\""), std::string::npos) << js;
  RunResult rb = b.Wait(20);
  EXPECT_EQ(rb.exit_code, 0) << rb.out << rb.err;
  // Wipe verified: B's fresh memory holds nothing of A's 0xAB marker.
  EXPECT_NE(rb.out.find("NO-PATTERN"), std::string::npos) << rb.out;
  EXPECT_FALSE(a.WaitForOutput("ROUND 0", 0.01)) << "B ran while A was idle, not after it";
  // A computes again through its old pointers and checks every byte.
  RunResult ra = a.Wait(30);
  EXPECT_EQ(ra.exit_code, 0) << ra.out << ra.err << server.Log();
  EXPECT_NE(ra.out.find("ALL OK"), std::string::npos) << ra.out;
  EXPECT_EQ(ra.err.find("queue"), std::string::npos) << "reattach is silent: " << ra.err;
  std::string log = server.Log();
  EXPECT_NE(log.find("reattached after"), std::string::npos) << log;
  // Detach saved, wiped and verified all of A's memory: 8 MiB + 16 MiB + a slab.
  size_t at = log.find("detached: ");
  ASSERT_NE(at, std::string::npos) << log;
  EXPECT_GE(std::stoull(log.substr(at + 10)), 26ull << 20) << log.substr(at, 100);
}

TEST(Detach, AlwaysDetachesAnIdleSessionWithNobodyWaiting) {
  TestServer server({"--sim-gpus", "1", "--idle-timeout", "0.1", "--detach-idle", "always"});
  Child a({Program("swap_check"), "2", "1.5"}, server.ClientEnv());
  ASSERT_TRUE(a.WaitForOutput("READY", 20));
  nlohmann::json detached;
  ASSERT_TRUE(PollFor(5, [&] {
    nlohmann::json js = nlohmann::json::parse(server.StatusJson(), nullptr, false);
    if (js.is_discarded()) return false;
    for (auto& s : js["sessions"])
      if (s.value("state", "") == "detached") detached = s;
    return !detached.is_null();
  })) << server.StatusJson();
  EXPECT_GE(detached.value("bytes_swapped", uint64_t{0}), 26ull << 20) << detached.dump();
  // Its GPU is free (once the warm worker, deferred while A held it, is up).
  EXPECT_TRUE(PollFor(10, [&] { return server.StatusJson().find("\"state\":\"free\"") != std::string::npos; }))
      << server.StatusJson();
  RunResult r = a.Wait(30);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  EXPECT_GE(Count(server.Log(), "reattached after"), 2u) << server.Log();
}

TEST(Detach, NeverKeepsAnIdleSessionAttached) {
  TestServer server({"--sim-gpus", "1", "--idle-timeout", "0.05", "--detach-idle", "never"});
  Child a({Program("swap_check"), "1", "1"}, server.ClientEnv());
  ASSERT_TRUE(a.WaitForOutput("READY", 20));
  Child b({Program("link_loss"), "0.1"}, server.ClientEnv());
  EXPECT_FALSE(b.WaitForOutput("READY", 0.5)) << "B got the GPU while A held it";
  EXPECT_EQ(a.Wait(30).exit_code, 0);
  EXPECT_EQ(b.Wait(30).exit_code, 0);
  EXPECT_EQ(server.Log().find("detached"), std::string::npos) << server.Log();
}

TEST(Detach, ClientKilledWhileDetachedEndsItsSession) {
  TestServer server({"--sim-gpus", "1", "--idle-timeout", "0.1", "--detach-idle", "always"});
  auto a = std::make_unique<Child>(std::vector<std::string>{Program("swap_check"), "1", "30"}, server.ClientEnv());
  ASSERT_TRUE(a->WaitForOutput("READY", 20));
  ASSERT_TRUE(PollFor(5, [&] { return server.StatusJson().find("\"state\":\"detached\"") != std::string::npos; }))
      << server.StatusJson();
  kill(a->pid(), SIGKILL);
  a.reset();
  // Its worker sees the client go, frees the host copy and exits; the
  // supervisor forgets the session.
  EXPECT_TRUE(PollFor(10, [&] { return server.Log().find("ended while detached") != std::string::npos; }))
      << server.Log();
  EXPECT_TRUE(PollFor(10, [&] { return server.StatusJson().find("\"sessions\":[]") != std::string::npos; }))
      << server.StatusJson();
  RunResult r = RunProgram({Program("link_loss"), "0.1"}, server.ClientEnv(), 30);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(Detach, ClientKilledWhileWaitingToReattachLeavesTheQueue) {
  TestServer server({"--sim-gpus", "1", "--idle-timeout", "0.1"});
  auto a = std::make_unique<Child>(std::vector<std::string>{Program("swap_check"), "1", "0.5"}, server.ClientEnv());
  ASSERT_TRUE(a->WaitForOutput("READY", 20));
  Child b({Program("link_loss"), "4"}, server.ClientEnv());  // busy: never idle
  ASSERT_TRUE(b.WaitForOutput("READY", 20));
  // A's next call queues it behind B.
  ASSERT_TRUE(PollFor(5, [&] { return server.StatusJson().find("\"reattach\":true") != std::string::npos; }))
      << server.StatusJson();
  kill(a->pid(), SIGKILL);
  a.reset();
  EXPECT_TRUE(PollFor(5, [&] { return server.StatusJson().find("\"queue\":[]") != std::string::npos; }))
      << server.StatusJson();
  EXPECT_TRUE(PollFor(5, [&] { return server.Log().find("left while waiting for its GPU") != std::string::npos; }))
      << server.Log();
  EXPECT_EQ(b.Wait(30).exit_code, 0);
}

// Eight processes, one GPU, each alternating compute and idle: every one
// finishes with correct results, and the queue is served in FIFO order
// (watched through the status: nobody leaves the queue while someone who
// was ahead of it still waits).
TEST(Detach, EightProcessesShareOneGpuInFifoOrder) {
  TestServer server({"--sim-gpus", "1", "--idle-timeout", "0.1"});
  std::vector<std::unique_ptr<Child>> kids;
  for (int i = 0; i < 8; ++i)
    kids.push_back(std::make_unique<Child>(std::vector<std::string>{Program("swap_check"), "3", "0.3"},
                                           server.ClientEnv()));
  std::vector<uint64_t> prev;
  size_t longest = 0, overtakes = 0, snapshots = 0;
  std::string violation;
  bool seen_any = false;
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    nlohmann::json js = nlohmann::json::parse(server.StatusJson(), nullptr, false);
    if (!js.is_discarded()) {
      std::vector<uint64_t> cur;
      for (auto& q : js["queue"]) cur.push_back(q.value("session", uint64_t{0}));
      std::set<uint64_t> now(cur.begin(), cur.end());
      for (size_t i = 0; i < prev.size(); ++i) {
        if (now.count(prev[i])) continue;  // still waiting
        for (size_t j = 0; j < i; ++j)
          if (now.count(prev[j])) {
            ++overtakes;
            violation = "session " + std::to_string(prev[i]) + " left the queue before " + std::to_string(prev[j]);
          }
      }
      longest = std::max(longest, cur.size());
      prev = cur;
      ++snapshots;
      if (!js["sessions"].empty()) seen_any = true;
      else if (seen_any) break;  // everyone finished
    }
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(90)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (auto& k : kids) {
    RunResult r = k->Wait(30);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("ALL OK"), std::string::npos) << r.out;
  }
  EXPECT_EQ(overtakes, 0u) << violation;
  EXPECT_GE(longest, 4u) << "the processes never queued together";
  std::string log = server.Log();
  EXPECT_GE(Count(log, "detached ("), 8u) << log;
  EXPECT_GE(Count(log, "reattached after"), 8u) << log;
  EXPECT_EQ(Count(log, "detach failed"), 0u) << log;
}

// The record of the session whose client has process id `pid` (null if
// there is none).
nlohmann::json SessionOf(const TestServer& server, pid_t pid) {
  nlohmann::json js = nlohmann::json::parse(server.StatusJson(), nullptr, false);
  if (js.is_discarded()) return nullptr;
  std::string key = "pid=" + std::to_string(pid) + " ";
  for (auto& s : js["sessions"])
    if (s.value("identity", "").find(key) != std::string::npos) return s;
  return nullptr;
}

// True once every GPU of the server has a ready warm worker: a new session
// then takes the lowest free GPU (before that, whichever worker is ready
// first: under ASan GPU 1's once was).
bool AllWarm(const TestServer& server, size_t n) {
  return PollFor(20, [&] {
    nlohmann::json js = nlohmann::json::parse(server.StatusJson(), nullptr, false);
    if (js.is_discarded() || js["gpus"].size() != n) return false;
    for (const nlohmann::json& g : js["gpus"])
      if (g.value("state", "") != "free") return false;
    return true;
  });
}

// Two GPUs of one type. A (GPU 0) goes idle and is detached for B, which
// waited; C, on GPU 1, ends meanwhile. A's next call finds its own GPU busy
// (B) and GPU 1 free: it reattaches there, with its data, stream, event and
// kernel intact at the same pointers, and the status shows it on GPU 1.
TEST(Detach, ReattachMovesToAnotherFreeGpuOfTheSameType) {
  TestServer server({"--sim-gpus", "2", "--idle-timeout", "0.2"});
  ASSERT_TRUE(AllWarm(server, 2)) << server.StatusJson();
  Child a({Program("swap_check"), "2", "3"}, server.ClientEnv());
  ASSERT_TRUE(a.WaitForOutput("READY", 20));
  nlohmann::json sa;
  ASSERT_TRUE(PollFor(5, [&] {
    sa = SessionOf(server, a.pid());
    return !sa.is_null() && sa["gpus"] == nlohmann::json::array({0});
  })) << server.StatusJson();
  Child c({Program("link_loss"), "1.5"}, server.ClientEnv());  // GPU 1: busy, then gone
  ASSERT_TRUE(c.WaitForOutput("READY", 20));
  Child b({Program("link_loss"), "8"}, server.ClientEnv());  // waits, then takes GPU 0 from idle A
  ASSERT_TRUE(PollFor(10, [&] { return server.Log().find("detached (") != std::string::npos; })) << server.Log();
  ASSERT_TRUE(b.WaitForOutput("READY", 10)) << server.Log();
  RunResult rc = c.Wait(20);
  EXPECT_EQ(rc.exit_code, 0) << rc.out << rc.err;
  // A wakes 3 s after READY: GPU 0 is B's, GPU 1 is free.
  ASSERT_TRUE(PollFor(10, [&] { return server.Log().find("(moved from gpu 0)") != std::string::npos; }))
      << server.Log();
  EXPECT_TRUE(PollFor(5, [&] {
    sa = SessionOf(server, a.pid());
    return !sa.is_null() && sa.value("state", "") == "attached" && sa["gpus"] == nlohmann::json::array({1});
  })) << server.StatusJson();
  nlohmann::json sb = SessionOf(server, b.pid());
  EXPECT_EQ(sb["gpus"], nlohmann::json::array({0})) << "B keeps GPU 0: " << server.StatusJson();
  RunResult ra = a.Wait(30);
  EXPECT_EQ(ra.exit_code, 0) << ra.out << ra.err << server.Log();
  EXPECT_NE(ra.out.find("ALL OK"), std::string::npos) << ra.out;
  std::string log = server.Log();
  EXPECT_NE(log.find("moved from GPU ordinal 0 to 1"), std::string::npos) << log;
  EXPECT_EQ(log.find(", 0 module(s)"), std::string::npos) << "the kernel's module moved too: " << log;
  EXPECT_EQ(log.find("can reattach only on its own GPU"), std::string::npos) << log;
  RunResult rb = b.Wait(30);
  EXPECT_EQ(rb.exit_code, 0) << rb.out << rb.err;
}

// The same, but A asked for a module global's address: a reload on GPU 1
// would place it elsewhere, so A says it cannot move and waits for GPU 0
// (FIFO with reservation) although GPU 1 is free.
TEST(Detach, ASessionThatCannotMoveWaitsForItsOwnGpu) {
  TestServer server({"--sim-gpus", "2", "--idle-timeout", "0.2"});
  ASSERT_TRUE(AllWarm(server, 2)) << server.StatusJson();
  Child a({Program("swap_check"), "1", "2.5", "pin"}, server.ClientEnv());
  ASSERT_TRUE(a.WaitForOutput("READY", 20));
  nlohmann::json first;
  ASSERT_TRUE(PollFor(5, [&] {
    first = SessionOf(server, a.pid());
    return !first.is_null() && first["gpus"] == nlohmann::json::array({0});
  })) << server.StatusJson();
  Child c({Program("link_loss"), "1"}, server.ClientEnv());  // GPU 1, then gone
  ASSERT_TRUE(c.WaitForOutput("READY", 20));
  Child b({Program("link_loss"), "4"}, server.ClientEnv());  // takes GPU 0 from idle A
  ASSERT_TRUE(PollFor(10, [&] { return server.Log().find("detached (") != std::string::npos; })) << server.Log();
  EXPECT_EQ(c.Wait(20).exit_code, 0);
  // A wakes while B still holds GPU 0: it queues although GPU 1 is free.
  nlohmann::json sa;
  ASSERT_TRUE(PollFor(10, [&] {
    sa = SessionOf(server, a.pid());
    return !sa.is_null() && sa.value("state", "") == "waiting";
  })) << server.StatusJson();
  EXPECT_NE(server.StatusJson().find("\"state\":\"free\""), std::string::npos) << "GPU 1 is free meanwhile";
  RunResult ra = a.Wait(30);
  EXPECT_EQ(ra.exit_code, 0) << ra.out << ra.err << server.Log();
  EXPECT_NE(ra.out.find("ALL OK"), std::string::npos) << ra.out;
  std::string log = server.Log();
  EXPECT_NE(log.find("can reattach only on its own GPU: the program asked for a module global's address"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("moved from"), std::string::npos) << log;
  EXPECT_NE(log.find("gpu 0: session 1 reattached"), std::string::npos) << log;
  EXPECT_EQ(b.Wait(30).exit_code, 0);
}

}  // namespace
}  // namespace rgpu::testing
