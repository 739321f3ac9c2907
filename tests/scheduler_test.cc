// Time-slicing over the sim backend: exclusive leases, FIFO queue with
// positions, wait timeouts, a worker per session, wipe after each session,
// and a killed client freeing its GPU.
#include <signal.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/process.h"

namespace rgpu::testing {
namespace {

std::string Program(const std::string& name) { return BuildDir() + "/tests/programs/" + name; }

TEST(Scheduler, OneGpuServesSessionsOneAtATimeInArrivalOrder) {
  TestServer server({"--sim-gpus", "1"});
  Child holder({Program("link_loss"), "4"}, server.ClientEnv());
  ASSERT_TRUE(holder.WaitForOutput("READY", 20));
  Child first({Program("link_loss"), "0.3"}, server.ClientEnv());
  // Poll rather than sleep: under load a client takes a while to connect.
  auto queued = [&](const char* pos) {
    for (int i = 0; i < 500; ++i) {
      if (server.StatusJson().find(pos) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  };
  ASSERT_TRUE(queued("\"position\":1")) << server.StatusJson();
  Child second({Program("link_loss"), "0.3"}, server.ClientEnv());
  ASSERT_TRUE(queued("\"position\":2")) << server.StatusJson();
  // While the holder runs, nobody else has the GPU.
  EXPECT_EQ(server.SessionWorkers().size(), 1u) << server.StatusJson();
  ASSERT_TRUE(first.WaitForOutput("READY", 30));
  EXPECT_FALSE(second.WaitForOutput("READY", 0.05)) << "second overtook first";
  RunResult h = holder.Wait(30), a = first.Wait(30), b = second.Wait(30);
  EXPECT_EQ(h.exit_code, 0) << h.err;
  EXPECT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(b.exit_code, 0) << b.err;
  EXPECT_NE(a.err.find("position 1 in the queue"), std::string::npos) << a.err;
  EXPECT_NE(b.err.find("position 2 in the queue"), std::string::npos) << b.err;
  EXPECT_EQ(h.err.find("queue"), std::string::npos) << "a client that never waits prints nothing";
}

TEST(Scheduler, WaitTimeoutFailsClearly) {
  TestServer server({"--sim-gpus", "1"});
  Child holder({Program("link_loss"), "5"}, server.ClientEnv());
  ASSERT_TRUE(holder.WaitForOutput("READY", 20));
  auto env = server.ClientEnv();
  env["RGPU_WAIT_TIMEOUT"] = "0.5";
  RunResult r = RunProgram({Program("link_loss"), "0.1"}, env, 20);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("no GPU became free"), std::string::npos) << r.err;
  EXPECT_LT(r.seconds, 5);
}

TEST(Scheduler, TwoGpusServeTwoSessionsAtOnceEachWithItsOwnWorker) {
  TestServer server({"--sim-gpus", "2"});
  Child a({Program("link_loss"), "1"}, server.ClientEnv());
  Child b({Program("link_loss"), "1"}, server.ClientEnv());
  ASSERT_TRUE(a.WaitForOutput("READY", 20));
  ASSERT_TRUE(b.WaitForOutput("READY", 20));
  std::vector<pid_t> w1 = server.SessionWorkers();
  ASSERT_EQ(w1.size(), 2u) << server.StatusJson();
  EXPECT_NE(w1[0], w1[1]);
  EXPECT_EQ(a.Wait(30).exit_code, 0);
  EXPECT_EQ(b.Wait(30).exit_code, 0);
  // A worker serves one session: the next session gets a new process.
  Child c({Program("link_loss"), "0.5"}, server.ClientEnv());
  ASSERT_TRUE(c.WaitForOutput("READY", 20));
  std::vector<pid_t> w2 = server.SessionWorkers();
  ASSERT_EQ(w2.size(), 1u);
  EXPECT_NE(w2[0], w1[0]);
  EXPECT_NE(w2[0], w1[1]);
  EXPECT_EQ(c.Wait(30).exit_code, 0);
}

TEST(Scheduler, MemoryIsWipedAndVerifiedAfterEverySession) {
  TestServer server({"--sim-gpus", "1"});
  for (int i = 0; i < 2; ++i) {
    RunResult r = RunProgram({Program("wipe_check")}, server.ClientEnv(), 60);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("NO-PATTERN"), std::string::npos) << r.out;
  }
  // The worker zeroed the 64 MiB it served and read it back.
  for (int i = 0; i < 100 && server.Log().find("wiped and verified") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::string log = server.Log();
  size_t at = log.find("wiped and verified ");
  ASSERT_NE(at, std::string::npos) << log;
  EXPECT_GE(std::stoull(log.substr(at + 19)), 64ull << 20) << log.substr(at, 80);
}

TEST(Scheduler, KilledClientFreesItsGpu) {
  TestServer server({"--sim-gpus", "1"});
  auto holder = std::make_unique<Child>(std::vector<std::string>{Program("link_loss"), "60"}, server.ClientEnv());
  ASSERT_TRUE(holder->WaitForOutput("READY", 20));
  Child waiter({Program("link_loss"), "0.2"}, server.ClientEnv());
  for (int i = 0; i < 500 && server.StatusJson().find("\"position\":1") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(waiter.WaitForOutput("READY", 0.05));
  kill(holder->pid(), SIGKILL);
  holder.reset();
  EXPECT_TRUE(waiter.WaitForOutput("READY", 10)) << server.StatusJson();
  EXPECT_EQ(waiter.Wait(30).exit_code, 0);
}

TEST(Scheduler, HelperProcessesShareTheirParentsLease) {
  TestServer server({"--sim-gpus", "1"});
  // The parent takes the GPU first (started together, either could: then
  // the parent may queue, as it should).
  Child family({Program("family")}, server.ClientEnv());
  ASSERT_TRUE(family.WaitForOutput("parent: ok", 30));
  Child other({Program("link_loss"), "0.2"}, server.ClientEnv());  // not family: must wait
  RunResult r = family.Wait(60);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  EXPECT_NE(r.out.find("child: ok"), std::string::npos) << r.out;
  EXPECT_NE(server.Log().find("sharing its parent's lease"), std::string::npos) << server.Log();
  // The child waits for nobody (at most for a worker to start): no queue line.
  EXPECT_EQ(r.err.find("in the queue"), std::string::npos) << r.err;
  EXPECT_EQ(other.Wait(30).exit_code, 0);
}

// Polls the status JSON for `what` for up to `seconds`.
bool StatusShows(TestServer& server, const std::string& what, double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  do {
    if (server.StatusJson().find(what) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < end);
  return false;
}

TEST(Scheduler, DeferredWarmWorkerStartsAfterTheDelay) {
  TestServer server({"--sim-gpus", "1", "--warm-spawn-delay", "1.5"});
  Child holder({Program("link_loss"), "6"}, server.ClientEnv());
  ASSERT_TRUE(holder.WaitForOutput("READY", 20));
  // Leased, with the next warm worker not started yet but due.
  std::string js = server.StatusJson();
  EXPECT_NE(js.find("\"warm_worker_due_s\""), std::string::npos) << js;
  EXPECT_NE(js.find("\"warm_worker\":false"), std::string::npos) << js;
  // Then it starts and becomes ready while the holder still runs.
  EXPECT_TRUE(StatusShows(server, "\"warm_worker\":true", 15)) << server.StatusJson();
  EXPECT_EQ(server.StatusJson().find("warm_worker_due_s"), std::string::npos) << server.StatusJson();
  EXPECT_NE(server.StatusJson().find("\"state\":\"leased\""), std::string::npos) << server.StatusJson();
  EXPECT_EQ(holder.Wait(30).exit_code, 0);
}

TEST(Scheduler, DeferredWarmWorkerStartsAtOnceWhenASessionWaitsOrTheLeaseEnds) {
  TestServer server({"--sim-gpus", "1", "--warm-spawn-delay", "600"});
  {
    Child holder({Program("link_loss"), "4"}, server.ClientEnv());
    ASSERT_TRUE(holder.WaitForOutput("READY", 20));
    EXPECT_NE(server.StatusJson().find("warm_worker_due_s"), std::string::npos) << server.StatusJson();
    // A waiting session: its warm worker is made now, not in ten minutes.
    Child next({Program("link_loss"), "0.1"}, server.ClientEnv());
    EXPECT_TRUE(StatusShows(server, "\"warm_worker\":true", 15)) << server.StatusJson();
    EXPECT_EQ(holder.Wait(30).exit_code, 0);
    RunResult r = next.Wait(30);
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  // A lease that ends before the delay: the GPU is made free again at once.
  RunResult quick = RunProgram({Program("link_loss"), "0.1"}, server.ClientEnv(), 30);
  EXPECT_EQ(quick.exit_code, 0) << quick.err;
  EXPECT_TRUE(StatusShows(server, "\"state\":\"free\"", 15)) << server.StatusJson();
  EXPECT_EQ(server.StatusJson().find("warm_worker_due_s"), std::string::npos) << server.StatusJson();
}

TEST(Scheduler, StatusNamesGpusHoldersAndQueue) {
  TestServer server({"--sim-gpus", "2"});
  Child a({Program("link_loss"), "1"}, server.ClientEnv());
  ASSERT_TRUE(a.WaitForOutput("READY", 20));
  std::string js = server.StatusJson();
  EXPECT_NE(js.find("\"state\":\"leased\""), std::string::npos) << js;
  EXPECT_NE(js.find("link_loss"), std::string::npos) << js;  // the holder's identity names the program
  EXPECT_NE(js.find("\"sessions_active\":1"), std::string::npos) << js;
  // The CLI reads the same socket.
  RunResult table = RunProgram({BuildDir() + "/bin/rgpu", "status", "--port", std::to_string(server.port())}, {}, 10);
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("leased"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("link_loss"), std::string::npos) << table.out;
  EXPECT_EQ(a.Wait(30).exit_code, 0);
}

}  // namespace
}  // namespace rgpu::testing
