// Fault injection over sim: clients killed with SIGKILL at random points
// (starting, queued, copying, launching, synchronising), a supervisor killed
// and restarted. Afterwards nothing may be left behind: no worker processes
// beyond the warm ones, no lease or queue entry, no supervisor fd, no growth
// of the supervisor's memory, and the next session finds a wiped GPU.
#include <signal.h>
#include <unistd.h>

#include <time.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace rgpu::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string Program(const std::string& name) { return BuildDir() + "/tests/programs/" + name; }

uint64_t RssBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// True once every GPU is free with its warm worker, no session is attached
// or waiting, and the only children are the warm workers.
bool Settled(const TestServer& server, int gpus, std::string* why) {
  nlohmann::json js = nlohmann::json::parse(server.StatusJson(), nullptr, /*allow_exceptions=*/false);
  if (js.is_discarded()) {
    *why = "no status";
    return false;
  }
  const nlohmann::json& t = js["totals"];
  size_t workers = server.Workers().size();
  *why = "totals " + t.dump() + ", " + std::to_string(workers) + " worker processes";
  return t.value("gpus_free", -1) == gpus && t.value("sessions_attached", -1) == 0 &&
         t.value("sessions_waiting", -1) == 0 && js["queue"].empty() && workers == static_cast<size_t>(gpus);
}

void WaitSettled(const TestServer& server, int gpus) {
  std::string why;
  for (int i = 0; i < 300 && !Settled(server, gpus, &why); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(Settled(server, gpus, &why)) << why << "\n" << server.StatusJson();
}

TEST(Faults, ClientsKilledAtRandomPointsLeaveNothingBehind) {
  constexpr int kGpus = 2, kKills = 200, kConcurrent = 4;
  TestServer server({"--sim-gpus", std::to_string(kGpus)});
  std::map<std::string, std::string> env = server.ClientEnv();
  env["RGPU_LOG"] = "off";  // the killed clients have nothing to say
  // Baseline after one clean session, so that lazily made state is counted.
  RunResult first = RunProgram({Program("work_loop"), "1"}, env, 60);
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  WaitSettled(server, kGpus);
  const int fds_before = OpenFds(server.pid());
  const uint64_t rss_before = RssBytes(server.pid());

  // Kill points are random but reproducible: the seed is printed.
  const unsigned seed = static_cast<unsigned>(Clock::now().time_since_epoch().count());
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> delay_ms(0, 600);
  struct Slot {
    std::unique_ptr<Child> child;
    Clock::time_point kill_at;
  };
  std::vector<Slot> slots(kConcurrent);
  int killed = 0, killed_working = 0, failed_on_its_own = 0;
  auto start = Clock::now();
  while (killed < kKills) {
    for (Slot& s : slots) {
      if (!s.child) {
        s.child = std::make_unique<Child>(std::vector<std::string>{Program("work_loop"), "0"}, env);
        s.kill_at = Clock::now() + std::chrono::milliseconds(delay_ms(rng));
      } else if (Clock::now() >= s.kill_at) {
        // READY: it was past its first round (copying, launching, syncing);
        // otherwise starting, in the handshake, queued or allocating.
        killed_working += s.child->WaitForOutput("READY", 0.001);
        failed_on_its_own += s.child->WaitForOutput("FAILED", 0.001);
        s.child.reset();  // SIGKILL to it (and its process group), reaped
        ++killed;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (Slot& s : slots) s.child.reset();
  EXPECT_EQ(failed_on_its_own, 0) << "clients failed before they were killed";
  printf("[ figures  ] seed %u: %d clients killed in %.1f s (%d mid-work, %d while starting or queued)\n", seed,
         kKills, seconds, killed_working, kKills - killed_working);

  // Nothing left behind.
  WaitSettled(server, kGpus);
  EXPECT_TRUE(server.alive());
  EXPECT_LE(OpenFds(server.pid()), fds_before) << "supervisor fds leaked";
  uint64_t rss_after = RssBytes(server.pid());
  EXPECT_LT(rss_after, rss_before + (16u << 20)) << "supervisor RSS " << rss_before << " -> " << rss_after;
  std::string log = server.Log();
  EXPECT_EQ(Count(log, "killed by signal"), 0u) << "a worker crashed:\n" << log;
  EXPECT_EQ(Count(log, "wipe:"), 0u) << "a wipe failed:\n" << log;
  printf("[ figures  ] %zu sessions wiped and verified; supervisor fds %d -> %d, RSS %llu -> %llu KiB\n",
         Count(log, "wiped and verified"), fds_before, OpenFds(server.pid()),
         (unsigned long long)rss_before / 1024, (unsigned long long)rss_after / 1024);

  // The next sessions, one per GPU, find no byte of anyone's pattern and
  // work as before.
  Child w1({Program("wipe_check")}, env), w2({Program("wipe_check")}, env);
  RunResult r1 = w1.Wait(60), r2 = w2.Wait(60);
  EXPECT_EQ(r1.exit_code, 0) << r1.out << r1.err;
  EXPECT_EQ(r2.exit_code, 0) << r2.out << r2.err;
  EXPECT_NE(r1.out.find("NO-PATTERN"), std::string::npos) << r1.out;
  EXPECT_NE(r2.out.find("NO-PATTERN"), std::string::npos) << r2.out;
  RunResult after = RunProgram({Program("work_loop"), "3"}, env, 60);
  EXPECT_EQ(after.exit_code, 0) << after.out << after.err;
  WaitSettled(server, kGpus);
}

TEST(Faults, KilledWorkerFailsItsClientWithinASecond) {
  TestServer server({"--sim-gpus", "2"});
  Child victim({Program("work_loop"), "0"}, server.ClientEnv());
  Child bystander({Program("work_loop"), "0"}, server.ClientEnv());
  ASSERT_TRUE(victim.WaitForOutput("READY", 30));
  ASSERT_TRUE(bystander.WaitForOutput("READY", 30));
  // The victim's worker: the session whose identity names the victim's pid.
  pid_t worker = -1;
  nlohmann::json js = nlohmann::json::parse(server.StatusJson(), nullptr, false);
  ASSERT_FALSE(js.is_discarded());
  for (const nlohmann::json& s : js["sessions"])
    if (s.value("identity", "").find(" pid=" + std::to_string(victim.pid()) + " ") != std::string::npos)
      worker = s.value("worker_pid", -1);
  ASSERT_GT(worker, 0) << js.dump();
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const double killed_at = ts.tv_sec + ts.tv_nsec * 1e-9;
  kill(worker, SIGKILL);
  RunResult r = victim.Wait(20);
  EXPECT_FALSE(r.timed_out) << "the client hung after its worker died";
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  // When the client itself saw the error (its clock, not our polling).
  size_t at = r.out.find("at=");
  ASSERT_NE(at, std::string::npos) << r.out;
  double noticed = atof(r.out.c_str() + at + 3) - killed_at;
  printf("[ figures  ] the client saw its worker's death after %.3f s\n", noticed);
  EXPECT_LT(noticed, 1.0) << r.out << r.err;
  // The other session is unaffected: still running rounds.
  EXPECT_TRUE(server.alive());
  EXPECT_FALSE(bystander.WaitForOutput("FAILED", 1.0));
}

TEST(Faults, RestartedSupervisorFailsOldClientsClearlyAndServesNewOnes) {
  auto server = std::make_unique<TestServer>();
  const int port = server->port();
  std::map<std::string, std::string> env = server->ClientEnv();
  Child client({Program("work_loop"), "0"}, env);
  ASSERT_TRUE(client.WaitForOutput("READY", 30));
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const double killed_at = ts.tv_sec + ts.tv_nsec * 1e-9;
  kill(server->pid(), SIGKILL);
  RunResult r = client.Wait(20);
  EXPECT_FALSE(r.timed_out) << "client hung after the supervisor died";
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  size_t at = r.out.find("at=");
  ASSERT_NE(at, std::string::npos) << r.out;
  EXPECT_LT(atof(r.out.c_str() + at + 3) - killed_at, 1.0) << "the client learnt of the loss late:\n" << r.out;
  EXPECT_NE(r.err.find("link"), std::string::npos) << "no reason given:\n" << r.err;
  server.reset();
  // The supervisor comes back on the same port (its workers died with it:
  // PR_SET_PDEATHSIG) and serves new clients.
  TestServer again({"--listen", "127.0.0.1:" + std::to_string(port)});
  ASSERT_EQ(again.port(), port);
  RunResult next = RunProgram({Program("work_loop"), "3"}, env, 60);
  EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
}

TEST(Faults, SessionStuckOnTheGpuAfterItsClientLeftIsEndedAndTheCardScrubbed) {
  // A kernel that runs two minutes, its program killed while it waits: the
  // worker cannot tear the session down, so after --teardown-grace it ends
  // itself, and the card is scrubbed and goes to the next session.
  TestServer server({"--teardown-grace", "1"});
  std::map<std::string, std::string> env = server.ClientEnv();
  Child stuck({Program("stuck_kernel"), "120000"}, env);
  ASSERT_TRUE(stuck.WaitForOutput("LAUNCHED", 30));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the launch reaches the worker
  kill(stuck.pid(), SIGKILL);
  stuck.Wait(5);
  RunResult next = RunProgram({Program("stuck_kernel"), "10"}, env, 40);
  EXPECT_EQ(next.exit_code, 0) << next.out << next.err;
  EXPECT_NE(next.out.find("DONE"), std::string::npos) << next.out;
  printf("[ figures  ] the next session ran %.1f s after the stuck one's client was killed\n", next.seconds);
  EXPECT_LT(next.seconds, 20.0) << "the GPU stayed with the stuck session";
  std::string log = server.Log();
  EXPECT_NE(log.find("ending this worker without its wipe"), std::string::npos) << log;
  EXPECT_NE(log.find("scrubbed"), std::string::npos) << log;
  EXPECT_TRUE(server.alive());
}

}  // namespace
}  // namespace rgpu::testing
