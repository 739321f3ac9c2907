// End to end over real sockets and the sim backend: nvcc-built programs
// (static and shared cudart) through the real client library and a real
// rgpu-server, plus every failure a user can meet: no server, wrong token,
// the worker or the whole server dying mid-run.
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/process.h"

namespace rgpu::testing {
namespace {

std::string Program(const std::string& name) { return BuildDir() + "/tests/programs/" + name; }

TEST(EndToEnd, EveryProgramPassesOverSim) {
  std::vector<std::string> programs = E2EPrograms();
  ASSERT_GE(programs.size(), 4u) << "test programs missing under " << BuildDir() << "/tests/e2e";
  TestServer server;
  for (const std::string& p : programs) {
    RunResult r = RunProgram({p}, server.ClientEnv(), 120);
    EXPECT_EQ(r.exit_code, 0) << p << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err
                              << "\nserver:\n" << server.Log();
  }
  EXPECT_TRUE(server.alive());
  // Every session's wipe covered only ranges still its own: programs that
  // unload modules (cudart does at exit) or destroy contexts leave no stale
  // range behind for the wipe to trip over.
  for (int i = 0; i < 100 && !server.SessionWorkers().empty(); ++i) usleep(50 * 1000);
  EXPECT_EQ(server.Log().find("wipe:"), std::string::npos) << server.Log();
}

TEST(EndToEnd, EveryProgramPassesWithSandboxedWorkers) {
  if (geteuid() != 0) GTEST_SKIP() << "the sandbox drops to another user only when started as root";
  std::vector<std::string> programs = E2EPrograms();
  ASSERT_GE(programs.size(), 4u);
  TestServer server({"--sandbox", "on"});
  for (const std::string& p : programs) {
    RunResult r = RunProgram({p}, server.ClientEnv(), 120);
    EXPECT_EQ(r.exit_code, 0) << p << "\n" << r.out << r.err << "\nserver:\n" << server.Log();
  }
  EXPECT_NE(server.Log().find("sandbox: uid 65534"), std::string::npos) << server.Log();
}

TEST(EndToEnd, ManagedMemoryIsCoherentBothWays) {
  TestServer server;
  RunResult r = RunProgram({Program("managed"), "rgpu"}, server.ClientEnv(), 120);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  EXPECT_NE(r.out.find("OK managed"), std::string::npos) << r.out;
}

TEST(EndToEnd, ManagedVariablesAreSharedWithTheHost) {
  TestServer server;
  RunResult r = RunProgram({Program("managed_vars")}, server.ClientEnv(), 120);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  EXPECT_NE(r.out.find("OK managed_vars"), std::string::npos) << r.out;
}

TEST(EndToEnd, BatchedCopiesArriveAndBadBatchesAreRefused) {
  TestServer server;
  RunResult r = RunProgram({Program("copy_batch")}, server.ClientEnv(), 120);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  EXPECT_NE(r.out.find("OK copy_batch"), std::string::npos) << r.out;
}

TEST(EndToEnd, MappedPinnedMemoryIsReadAndWrittenByKernels) {
  TestServer server;
  RunResult r = RunProgram({Program("zero_copy")}, server.ClientEnv(), 120);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  EXPECT_NE(r.out.find("OK zero_copy"), std::string::npos) << r.out;
  // Plain pinned memory has a device pointer too (it is promoted, as on a
  // local GPU with unified addressing, where the driver says cudaSuccess).
  EXPECT_NE(r.out.find("plain pinned device pointer: cudaSuccess"), std::string::npos) << r.out;
}

// Memory the program allocated and registered (cudaHostRegister) is used by
// kernels through its mirror (client/registered_memory.h): by the device
// pointer and by the host pointer itself, with host writes between and
// during launches, after context, stream and event syncs, a device-to-device
// copy from it, and unregistering; the run matches a local GPU's.
TEST(EndToEnd, RegisteredMemoryIsReadAndWrittenByKernels) {
  TestServer server;
  RunResult r = RunProgram({Program("host_register_mapped")}, server.ClientEnv(), 120);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  EXPECT_NE(r.out.find("OK host_register_mapped"), std::string::npos) << r.out << r.err;
}

// Plain pinned memory (cudaMallocHost) given to kernels by its host pointer
// is promoted at the launch (client/pinned_memory.h): the kernel reads what
// the host wrote and the host reads what the kernel wrote, twice; its
// device pointer is its host pointer; async copies through promoted and
// unpromoted pinned buffers carry the right data; cudaFreeHost frees both.
TEST(EndToEnd, PlainPinnedMemoryIsReadAndWrittenByKernels) {
  TestServer server;
  RunResult r = RunProgram({Program("pinned_kernel_access")}, server.ClientEnv(), 120);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  EXPECT_NE(r.out.find("OK pinned_kernel_access"), std::string::npos) << r.out << r.err;
}

// Driver calls from exit handlers, static destructors and a thread's
// thread_local destructors (what cuFFT, cuSPARSE, cuSOLVER and cudart do
// while a process ends) find the client's per-thread state intact: the
// current context, pushes and pops, synchronous calls with replies
// (tests/programs/exit_teardown.cu). Freed memory is filled with a pattern
// so that a use after free shows. As with the real driver, the client
// deinitialises itself in an exit handler registered at cuInit: calls from
// a static destructor of an object constructed before main, or from another
// thread by then, return CUDA_ERROR_DEINITIALIZED.
TEST(EndToEnd, DriverCallsWhileTheProcessAndItsThreadsEndAreSafe) {
  TestServer server;
  auto env = server.ClientEnv();
  env["MALLOC_PERTURB_"] = "165";
  RunResult r = RunProgram({Program("exit_teardown")}, env, 60);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  size_t last = 0;
  for (const char* line : {"thread teardown ok\n", "exit handler ok\n", "late static destructor ok\n",
                           "static destructor: cuCtxGetCurrent -> 4\n",
                           "static destructor: cuDriverGetVersion -> 4\n",
                           "thread during exit: cuCtxGetCurrent -> 4\n", "OK exit_teardown\n"}) {
    size_t at = r.out.find(line, last);
    EXPECT_NE(at, std::string::npos) << "missing, or out of order: " << line << r.out << r.err;
    if (at != std::string::npos) last = at;
  }
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
}

TEST(EndToEnd, DeviceOutputAndHostFunctionsReachTheClientInOrder) {
  TestServer server;
  RunResult r = RunProgram({Program("device_output")}, server.ClientEnv(), 60);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  size_t dev = r.out.find("device says 42 (thread 0)");
  size_t host = r.out.find("host after sync: cudaSuccess");
  ASSERT_NE(dev, std::string::npos) << r.out;
  ASSERT_NE(host, std::string::npos) << r.out;
  EXPECT_LT(dev, host) << "device output must come before the host output after the sync";
  EXPECT_NE(r.out.find("device says 42 (thread 1)"), std::string::npos);
  EXPECT_NE(r.out.find("callbacks: 3 [1 2 3] cudaSuccess"), std::string::npos) << r.out;
  // The server's own log must not have swallowed the program's output.
  EXPECT_EQ(server.Log().find("device says"), std::string::npos);
}

// Device-to-host chunks of a MiB and more are staged in pinned memory on the
// worker and sent piece by piece while the copy is still landing
// (server/worker/d2h_staging.h): 70 MiB is a full 64 MiB chunk and a 6 MiB
// one that ends in a partial piece, synchronously and on a stream.
TEST(EndToEnd, LargeCopiesArriveExactlyInBothDirections) {
  TestServer server;
  RunResult r = RunProgram({Program("bulk_copy"), "70"}, server.ClientEnv(), 120);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  EXPECT_NE(r.out.find("OK bulk_copy 70 MiB checksum"), std::string::npos) << r.out;
}

// Libraries ask for limits around their kernels many times per step: after
// the first answer the client gives them itself (DESIGN.md rule 1), and
// forgets a limit that cuCtxSetLimit changes.
TEST(EndToEnd, ContextLimitsAreAskedOnceUntilSet) {
  TestServer server;
  auto env = server.ClientEnv();
  env["RGPU_STATS"] = "1";  // the client counts its round trips by call
  RunResult r = RunProgram({Program("limit_cache")}, env, 60);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  EXPECT_NE(r.out.find("OK limits"), std::string::npos) << r.out;
  // 7 gets: stack (asked), stack (cached), stack after the set (asked),
  // heap (asked), heap (cached), sync depth twice (refused: asked both times).
  size_t at = r.err.find("CtxGetLimit ");
  ASSERT_NE(at, std::string::npos) << r.err;
  unsigned long long round_trips = 0;
  ASSERT_EQ(sscanf(r.err.c_str() + at, "CtxGetLimit sync %llu", &round_trips), 1) << r.err.substr(at, 200);
  EXPECT_EQ(round_trips, 5u) << r.err.substr(at, 200);
}

// Occupancy answers are cached per (function, block size, shared memory,
// flags) and the function attributes they depend on: raising the dynamic
// shared memory limit must not leave the old "0 blocks" answer behind.
TEST(EndToEnd, OccupancyFollowsTheFunctionsAttributes) {
  TestServer server;
  auto env = server.ClientEnv();
  env["RGPU_STATS"] = "1";
  RunResult r = RunProgram({Program("occupancy_cache")}, env, 60);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  EXPECT_NE(r.out.find("OK occupancy"), std::string::npos) << r.out;
  // Three queries: before the attribute (asked), after it (asked), again (cached).
  size_t at = r.err.find("OccupancyMaxActiveBlocks ");
  ASSERT_NE(at, std::string::npos) << r.err;
  unsigned long long round_trips = 0;
  ASSERT_EQ(sscanf(r.err.c_str() + at, "OccupancyMaxActiveBlocks sync %llu", &round_trips), 1)
      << r.err.substr(at, 200);
  EXPECT_EQ(round_trips, 2u) << r.err.substr(at, 200);
}

TEST(EndToEnd, VirtualMemoryMappingsWorkAcrossTheSeam) {
  TestServer server;
  RunResult r = RunProgram({Program("vmm")}, server.ClientEnv(), 60);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  EXPECT_NE(r.out.find("OK vmm"), std::string::npos) << r.out;
}

// Tensor maps, profiler, stream attributes, function enumeration,
// cuMemGetAccess, SYNC_MEMOPS, pointer attributes, memsets past an
// allocation (tests/programs/misc_calls.cu).
TEST(EndToEnd, SmallDriverCallsWork) {
  TestServer server;
  RunResult r = RunProgram({Program("misc_calls")}, server.ClientEnv(), 60);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  EXPECT_NE(r.out.find("OK misc_calls"), std::string::npos) << r.out;
  // A refused operand is named once per call, with its range and why.
  const std::string memset = "cuMemsetD32Async: 0x";
  const size_t at = r.err.find(memset);
  ASSERT_NE(at, std::string::npos) << r.err;
  EXPECT_EQ(r.err.rfind(memset), at) << "logged once for the call, not per refusal:\n" << r.err;
  const std::string line = r.err.substr(at, r.err.find('\n', at) - at);
  EXPECT_NE(line.find(" + 16 bytes is not inside any allocation made through rgpu"), std::string::npos) << line;
  EXPECT_NE(line.find("runs 8 bytes past the end of the allocation at 0x"), std::string::npos) << line;
  EXPECT_NE(r.err.find("cuMemcpyHtoD_v2: destination 0x"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cuPointerGetAttribute (attribute 5, CU_POINTER_ATTRIBUTE_P2P_TOKENS)"),
            std::string::npos)
      << r.err;
}

// Calls real programs reach that rgpu used to refuse: shared memory config,
// texture width, stream memory operations, 3D peer copies, kernel node
// attributes, child graph handles, DOT output, user objects, allocation in a
// capture, context events, capture into a graph (tests/programs/compat_calls.cu).
TEST(EndToEnd, CompatCallsWork) {
  TestServer server;
  RunResult r = RunProgram({Program("compat_calls")}, server.ClientEnv(), 60);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err << server.Log();
  EXPECT_NE(r.out.find("OK compat_calls"), std::string::npos) << r.out;
  // The session's memory, including what the captured free kept for the
  // graph, was the session's own until it ended: no stale range to wipe.
  for (int i = 0; i < 100 && !server.SessionWorkers().empty(); ++i) usleep(50 * 1000);
  EXPECT_EQ(server.Log().find("wipe:"), std::string::npos) << server.Log();
}

TEST(EndToEnd, CudaVisibleDevicesIsHonouredAsLocally) {
  TestServer server;
  auto env = server.ClientEnv();
  env["CUDA_VISIBLE_DEVICES"] = "";  // set but empty: no device at all
  RunResult r = RunProgram({Program("device_list")}, env, 30);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("count 0 cudaErrorNoDevice"), std::string::npos) << r.out;
  env["CUDA_VISIBLE_DEVICES"] = "0";
  r = RunProgram({Program("device_list")}, env, 30);
  EXPECT_NE(r.out.find("count 1 cudaSuccess"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("NVIDIA H200"), std::string::npos) << r.out;
  env["CUDA_VISIBLE_DEVICES"] = "GPU-b34879a2";  // a UUID prefix of the profile's device
  r = RunProgram({Program("device_list")}, env, 30);
  EXPECT_NE(r.out.find("count 1 cudaSuccess"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("uuidb34879a2"), std::string::npos) << r.out;
  env["CUDA_VISIBLE_DEVICES"] = "7";  // no such device: none visible
  r = RunProgram({Program("device_list")}, env, 30);
  EXPECT_NE(r.out.find("count 0"), std::string::npos) << r.out;
}

TEST(EndToEnd, LaunchBlockingReportsAnErrorAtTheLaunch) {
  // With CUDA_LAUNCH_BLOCKING=1 a failing launch reports at the launch; the
  // sim has no host function for this program's kernel, so its launch fails.
  TestServer server;
  auto env = server.ClientEnv();
  env["CUDA_LAUNCH_BLOCKING"] = "1";
  RunResult r = RunProgram({Program("claim_time")}, env, 30);
  EXPECT_NE(r.out.find("launch cudaErrorNotSupported"), std::string::npos) << r.out;
  env.erase("CUDA_LAUNCH_BLOCKING");
  RunResult r2 = RunProgram({Program("claim_time")}, env, 30);
  // Without it the launch returns at once and the error surfaces at the
  // next synchronisation, as CUDA's asynchronous errors do.
  EXPECT_NE(r2.out.find("launch cudaSuccess"), std::string::npos) << r2.out;
  EXPECT_NE(r2.out.find("sync cudaErrorNotSupported"), std::string::npos) << r2.out;
  EXPECT_NE(r2.exit_code, 0);
}

TEST(EndToEnd, WipeAfterAStickyErrorSaysWhyItCannotWrite) {
  // A faulted context runs nothing more, a memset included: the wipe must
  // report that once and plainly (the memory goes back to the driver when
  // the worker exits), not fail range by range with a bare error code.
  TestServer server;
  RunResult r = RunProgram({Program("sticky_fault")}, server.ClientEnv(), 60);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("sync cudaErrorIllegalAddress"), std::string::npos) << r.out;
  // 100 launches failed on the worker: one line says so, not 100.
  size_t lines = 0;
  for (size_t at = r.err.find("asynchronous error"); at != std::string::npos; at = r.err.find("asynchronous error", at + 1))
    ++lines;
  EXPECT_EQ(lines, 1u) << r.err;
  for (int i = 0; i < 100 && server.Log().find("sticky error") == std::string::npos; ++i) usleep(50 * 1000);
  std::string log = server.Log();
  EXPECT_NE(log.find("the context has a sticky error (CUresult 700)"), std::string::npos) << log;
  EXPECT_EQ(log.find("memset failed"), std::string::npos) << log;
  EXPECT_TRUE(server.alive());
}

TEST(EndToEnd, NoServerFailsAtInitWithAReason) {
  std::map<std::string, std::string> env = {{"LD_LIBRARY_PATH", ClientLibDir()},
                                            {"RGPU_SERVER", "127.0.0.1:9"}};  // nothing listens
  RunResult r = RunProgram({Program("link_loss")}, env, 30);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("SETUP-FAILED cudaErrorNoDevice"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("cannot reach a GPU"), std::string::npos) << r.err;
  EXPECT_LT(r.seconds, 10);
}

TEST(EndToEnd, WrongTokenFailsAtInitWithAReason) {
  char path[] = "/tmp/rgpu_token_XXXXXX";
  int fd = mkstemp(path);
  const std::string token = "e2e-token-0123456789abcdef";
  ASSERT_EQ(write(fd, token.data(), token.size()), static_cast<ssize_t>(token.size()));
  close(fd);
  TestServer server({"--token-file", path});
  auto env = server.ClientEnv();
  env["RGPU_TOKEN"] = "not-the-token-0123456789";
  RunResult r = RunProgram({Program("link_loss"), "1"}, env, 30);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("wrong or missing token"), std::string::npos) << r.err;
  env["RGPU_TOKEN"] = token;
  r = RunProgram({Program("link_loss"), "0.2"}, env, 30);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  unlink(path);
}

TEST(EndToEnd, WorkerKilledMidRunGivesAnErrorNotAHang) {
  TestServer server({"--sim-gpus", "2"});
  Child victim({Program("link_loss"), "60"}, server.ClientEnv());
  ASSERT_TRUE(victim.WaitForOutput("READY", 20));
  std::vector<pid_t> workers = server.SessionWorkers();
  ASSERT_EQ(workers.size(), 1u) << server.StatusJson();
  pid_t victim_worker = workers[0];
  Child bystander({Program("link_loss"), "3"}, server.ClientEnv());
  ASSERT_TRUE(bystander.WaitForOutput("READY", 20));
  ASSERT_EQ(server.SessionWorkers().size(), 2u) << server.StatusJson();
  kill(victim_worker, SIGKILL);
  RunResult r = victim.Wait(10);
  EXPECT_FALSE(r.timed_out) << "client hung after its worker died";
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("FAILED"), std::string::npos);
  EXPECT_NE(r.out.find("AGAIN cudaError"), std::string::npos);
  EXPECT_EQ(r.out.find("AGAIN cudaSuccess"), std::string::npos);
  // The other session is unaffected.
  RunResult b = bystander.Wait(30);
  EXPECT_EQ(b.exit_code, 0) << b.out << b.err;
  EXPECT_TRUE(server.alive());
}

TEST(EndToEnd, ServerKilledGivesClientsAClearError) {
  auto server = std::make_unique<TestServer>();
  Child client({Program("link_loss"), "60"}, server->ClientEnv());
  ASSERT_TRUE(client.WaitForOutput("READY", 20));
  kill(server->pid(), SIGKILL);
  RunResult r = client.Wait(10);
  EXPECT_FALSE(r.timed_out) << "client hung after the server died";
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.err.find("link"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace rgpu::testing
