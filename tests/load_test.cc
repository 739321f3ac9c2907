// Load over sim: 100 clients at once against one server with 2 simulated
// GPUs. They queue for the GPUs (FIFO); every one must finish with correct
// results, within a bounded time, and the server must end as it began.
#include <chrono>
#include <memory>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace rgpu::testing {
namespace {

TEST(Load, HundredClientsOnTwoGpusAllFinishCorrectly) {
  constexpr int kClients = 100;
  // Every client holds a session or a queue place: the default session
  // limit (64) would refuse some.
  TestServer server({"--sim-gpus", "2", "--max-sessions", "128"});
  std::map<std::string, std::string> env = server.ClientEnv();
  env["RGPU_LOG"] = "error";  // not the queue position of 100 clients
  const std::string program = BuildDir() + "/tests/programs/work_loop";
  auto start = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<Child>> clients;
  for (int i = 0; i < kClients; ++i)
    clients.push_back(std::make_unique<Child>(std::vector<std::string>{program, "20"}, env));
  int passed = 0;
  for (int i = 0; i < kClients; ++i) {
    RunResult r = clients[i]->Wait(240);
    bool ok = r.exit_code == 0 && r.out.find("PASS 20") != std::string::npos;
    passed += ok;
    EXPECT_TRUE(ok) << "client " << i << ": exit " << r.exit_code << (r.timed_out ? " (timed out)" : "") << "\n"
                    << r.out << r.err;
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  printf("[ figures  ] %d of %d clients passed in %.1f s (2 simulated GPUs)\n", passed, kClients, seconds);
  EXPECT_LT(seconds, 240.0);
  EXPECT_TRUE(server.alive());
  // Each was a session of its own, served one after another per GPU.
  nlohmann::json js = nlohmann::json::parse(server.StatusJson(), nullptr, false);
  ASSERT_FALSE(js.is_discarded());
  EXPECT_GE(js["totals"].value("sessions_served", 0), kClients) << js.dump();
}

}  // namespace
}  // namespace rgpu::testing
