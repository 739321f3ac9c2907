// Multi-GPU sessions over the sim backend (RGPU_GPUS=N, server --sim-gpus 3):
// a session sees N devices, computes on each, copies between them; its N
// leases are exclusive while it runs, a single-GPU session takes a GPU left
// over, a second multi-GPU session waits and then runs on wiped GPUs;
// impossible requests fail clearly at cuInit.
#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace rgpu::testing {
namespace {

using nlohmann::json;

std::string Program(const std::string& name) { return BuildDir() + "/tests/programs/" + name; }

std::map<std::string, std::string> Env(const TestServer& server, const std::string& gpus) {
  auto env = server.ClientEnv();
  env["RGPU_GPUS"] = gpus;
  return env;
}

json Status(const TestServer& server) {
  json js = json::parse(server.StatusJson(), nullptr, false);
  return js.is_discarded() ? json::object() : js;
}

// Polls the status until `pred` holds (a client takes a while to connect
// under load); false after ~10 s.
template <class Pred>
bool WaitForStatus(const TestServer& server, Pred pred) {
  for (int i = 0; i < 1000; ++i) {
    if (pred(Status(server))) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// True once all `n` GPUs have a ready warm worker. A lease takes ready GPUs,
// lowest index first, so a test that names the GPUs a session gets waits for
// this first (under load a slow warm worker once made a lease 0,2, not 0,1).
bool AllWarm(const TestServer& server, size_t n) {
  return WaitForStatus(server, [n](const json& s) {
    for (const json& g : s["gpus"])
      if (g.value("state", "") != "free") return false;
    return s["gpus"].size() == n;
  });
}

// Attached sessions' GPU lists (host indices), in status order.
std::vector<std::vector<int>> AttachedGpus(const json& js) {
  std::vector<std::vector<int>> out;
  for (const json& s : js.value("sessions", json::array()))
    if (s.value("state", "") == "attached") out.push_back(s["gpus"].get<std::vector<int>>());
  return out;
}

TEST(MultiGpu, SessionSeesItsDevicesComputesOnEachAndCopiesBetweenThem) {
  TestServer server({"--sim-gpus", "3"});
  auto env = Env(server, "2");
  env["EXPECT"] = "2";
  RunResult r = RunProgram({Program("multi_gpu")}, env, 60);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  for (const char* line : {"DEVICES 2", "ZEROS 1", "COMPUTE 0", "COMPUTE 1", "PEER 0->1 1", "PEER 1->0 1",
                           "COPY peer 0->1", "COPY peer-async 1->0", "COPY d2d 1->0", "COPY 3d-peer 0->1", "EVENT 1->0",
                           "MULTI-OK"})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  // The session's memory on both GPUs was wiped and checked when it ended.
  for (int i = 0; i < 200 && !server.SessionWorkers().empty(); ++i) usleep(20 * 1000);
  EXPECT_NE(server.Log().find("wiped and verified"), std::string::npos) << server.Log();
  EXPECT_EQ(server.Log().find("wipe:"), std::string::npos) << server.Log();
}

TEST(MultiGpu, AllMeansEveryGpuOfTheServer) {
  TestServer server({"--sim-gpus", "2"});
  auto env = Env(server, "all");
  env["EXPECT"] = "2";
  RunResult r = RunProgram({Program("multi_gpu")}, env, 60);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // A session without RGPU_GPUS sees one device.
  env = server.ClientEnv();
  env["EXPECT"] = "1";
  r = RunProgram({Program("multi_gpu")}, env, 60);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

TEST(MultiGpu, LeasesAreExclusiveLeftoversServeOthersAndTheNextOneWaits) {
  TestServer server({"--sim-gpus", "3"});
  ASSERT_TRUE(AllWarm(server, 3)) << server.StatusJson();
  auto two = Env(server, "2");
  two["EXPECT"] = "2";
  Child a({Program("multi_gpu"), "2.5"}, two);
  ASSERT_TRUE(a.WaitForOutput("READY", 30));
  json js = Status(server);
  ASSERT_EQ(AttachedGpus(js), (std::vector<std::vector<int>>{{0, 1}})) << js.dump();
  EXPECT_EQ(js["totals"]["gpus_leased"], 2) << js.dump();
  EXPECT_EQ(js["gpus"][0]["session_gpus"], json({0, 1})) << js.dump();
  EXPECT_TRUE(js["gpus"][2].contains("idle_s")) << js.dump();
  EXPECT_NE(js["gpus"][2].value("name", ""), "") << js.dump();  // reported by its warm worker
  EXPECT_GT(js["gpus"][2].value("memory_total", uint64_t{0}), 0u) << js.dump();

  // The third GPU serves a single-GPU session at once.
  Child b({Program("link_loss"), "0.5"}, server.ClientEnv());
  ASSERT_TRUE(b.WaitForOutput("READY", 30)) << server.StatusJson();
  // A second two-GPU session waits for A's GPUs.
  Child c({Program("multi_gpu")}, two);
  ASSERT_TRUE(WaitForStatus(server, [](const json& s) {
    return s["queue"].size() == 1 && s["queue"][0].value("gpus_wanted", 0) == 2;
  })) << server.StatusJson();
  EXPECT_FALSE(c.WaitForOutput("DEVICES", 0.05)) << "started while A held the GPUs";
  EXPECT_EQ(b.Wait(30).exit_code, 0);
  RunResult ra = a.Wait(30), rc = c.Wait(60);
  EXPECT_EQ(ra.exit_code, 0) << ra.out << ra.err;
  // C ran on A's two GPUs after A ended; its fresh memory read as zeros on
  // both (A left a pattern there), and everything else held too.
  EXPECT_EQ(rc.exit_code, 0) << rc.out << rc.err << server.Log();
  EXPECT_NE(rc.out.find("ZEROS 0"), std::string::npos) << rc.out;
  EXPECT_NE(rc.out.find("ZEROS 1"), std::string::npos) << rc.out;
  EXPECT_NE(rc.err.find("position 1 in the queue"), std::string::npos) << rc.err;
  EXPECT_NE(server.Log().find("gpu 0,1: session"), std::string::npos) << server.Log();
}

TEST(MultiGpu, HeadOfQueueKeepsFreedGpusUntilItHasEnough) {
  // Strict FIFO: a two-GPU request at the head is not overtaken by a
  // one-GPU request behind it, even when one GPU is free.
  TestServer server({"--sim-gpus", "2"});
  Child holder({Program("link_loss"), "1.5"}, server.ClientEnv());
  ASSERT_TRUE(holder.WaitForOutput("READY", 30));
  auto two = Env(server, "2");
  two["EXPECT"] = "2";
  Child big({Program("multi_gpu")}, two);
  ASSERT_TRUE(WaitForStatus(server, [](const json& s) { return s["queue"].size() == 1; })) << server.StatusJson();
  Child small({Program("link_loss"), "0.1"}, server.ClientEnv());
  ASSERT_TRUE(WaitForStatus(server, [](const json& s) { return s["queue"].size() == 2; })) << server.StatusJson();
  EXPECT_FALSE(small.WaitForOutput("READY", 0.3)) << "the one-GPU session overtook the two-GPU one";
  RunResult rb = big.Wait(60), rs = small.Wait(60);
  EXPECT_EQ(holder.Wait(30).exit_code, 0);
  EXPECT_EQ(rb.exit_code, 0) << rb.out << rb.err;
  EXPECT_EQ(rs.exit_code, 0) << rs.out << rs.err;
  EXPECT_NE(rs.err.find("position 2 in the queue"), std::string::npos) << rs.err;
}

TEST(MultiGpu, MoreGpusThanTheServerHasFailAtInit) {
  TestServer server({"--sim-gpus", "3"});
  RunResult r = RunProgram({Program("multi_gpu")}, Env(server, "4"), 30);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.out.find("INIT-FAILED"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("asks for 4 GPUs (RGPU_GPUS) but this server has 3"), std::string::npos) << r.err;
  EXPECT_LT(r.seconds, 10) << "refused at once, not queued";
  EXPECT_TRUE(server.alive());
}

TEST(MultiGpu, BadRgpuGpusFailsAtInit) {
  TestServer server({"--sim-gpus", "2"});
  for (const char* bad : {"0", "two", "-1", "2x", "65"}) {
    RunResult r = RunProgram({Program("multi_gpu")}, Env(server, bad), 30);
    EXPECT_EQ(r.exit_code, 2) << bad << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find(std::string("RGPU_GPUS='") + bad + "': expected a number of GPUs"), std::string::npos)
        << r.err;
  }
  EXPECT_TRUE(Status(server)["sessions"].empty()) << server.StatusJson();
}

TEST(MultiGpu, StatusCommandShowsSessionsAndTheirGpus) {
  TestServer server({"--sim-gpus", "3"});
  ASSERT_TRUE(AllWarm(server, 3)) << server.StatusJson();
  auto two = Env(server, "2");
  Child a({Program("multi_gpu"), "1"}, two);
  ASSERT_TRUE(a.WaitForOutput("READY", 30));
  RunResult table =
      RunProgram({BuildDir() + "/bin/rgpu", "status", "--port", std::to_string(server.port())}, {}, 10);
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("multi_gpu"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("gpus 0,1"), std::string::npos) << table.out;
  EXPECT_EQ(a.Wait(30).exit_code, 0);
}

}  // namespace
}  // namespace rgpu::testing
