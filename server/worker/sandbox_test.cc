// Tests of the worker sandbox. Each test enters the sandbox in a forked
// child (a sandbox cannot be left) and reports through the child's exit
// status: 0 = every check passed, 10 + n = check n failed, killed by SIGSYS =
// seccomp refused a call.
//
// As root (CI containers, GPU hosts) everything is checked; as another user
// the user change is skipped, and namespaces / Landlock are checked only
// where the kernel grants them (the report says which).
//
// RealDriver* run only where a real libcuda.so.1 loads (a GPU host; set
// RGPU_REAL_LIBCUDA to choose one): the CUDA driver must work inside the
// sandbox, entered before cuInit (as the worker does) and after it.
// RGPU_SANDBOX_TEST_AUDIT=1 runs them in audit mode and prints every call the
// table lacks instead of failing; RGPU_SANDBOX_TEST_DISABLE=landlock,user,...
// leaves steps out (to find which one a failing driver needs).
#include "server/worker/sandbox.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend/driver_table.h"

#if defined(__SANITIZE_ADDRESS__)
#define RGPU_TEST_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RGPU_TEST_SANITIZER 1
#endif
#endif

namespace rgpu::worker {
namespace {

struct ChildResult {
  int status = 0;
  std::string err;  // the child's stderr
  bool exited_ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  bool killed_by(int sig) const { return WIFSIGNALED(status) && WTERMSIG(status) == sig; }
  std::string Describe() const {
    std::string s = WIFEXITED(status)     ? "exit " + std::to_string(WEXITSTATUS(status))
                    : WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                          : "status " + std::to_string(status);
    return s + "; stderr: " + err;
  }
};

// Runs body() in a child; its return value is the exit code.
ChildResult InChild(const std::function<int()>& body) {
  int pipefd[2];
  EXPECT_EQ(pipe(pipefd), 0);
  fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    dup2(pipefd[1], STDERR_FILENO);
    _exit(body());
  }
  close(pipefd[1]);
  ChildResult r;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) r.err.append(buf, n);
  close(pipefd[0]);
  waitpid(pid, &r.status, 0);
  return r;
}

// A check inside the child: returns 10 + line-independent index on failure.
#define CHILD_CHECK(n, cond)                                  \
  do {                                                        \
    if (!(cond)) {                                            \
      fprintf(stderr, "check %d failed: %s\n", n, #cond);     \
      return 10 + (n);                                        \
    }                                                         \
  } while (0)

int Enter(const SandboxOptions& o = {}, SandboxReport* report = nullptr) {
  Status st = EnterSandbox(o, report);
  if (!st.ok()) {
    fprintf(stderr, "EnterSandbox: %s\n", st.ToString().c_str());
    return 2;
  }
  return 0;
}

TEST(Sandbox, NormalWorkStillWorks) {
  ChildResult r = InChild([] {
    int sv[2];
    CHILD_CHECK(1, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    if (int rc = Enter()) return rc;
    // Memory: small and large (mmap) allocations, protections, advice.
    std::vector<char> big(64 << 20, 1);
    CHILD_CHECK(2, big[12345] == 1);
    void* p = malloc(100);
    CHILD_CHECK(3, p != nullptr);
    free(p);
    // I/O on an inherited socket.
    const char msg[] = "ping";
    CHILD_CHECK(4, write(sv[0], msg, sizeof msg) == static_cast<ssize_t>(sizeof msg));
    char got[8] = {};
    CHILD_CHECK(5, read(sv[1], got, sizeof got) == static_cast<ssize_t>(sizeof msg));
    CHILD_CHECK(6, strcmp(got, "ping") == 0);
    // Threads, a mutex and a condition variable, sleeping, time.
    std::mutex mu;
    std::condition_variable cv;
    std::atomic<int> done{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        std::lock_guard<std::mutex> lock(mu);
        ++done;
        cv.notify_all();
      });
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done == 4; });
    }
    for (std::thread& t : threads) t.join();
    // Signals to itself (raise is tgkill(getpid(), gettid())).
    signal(SIGUSR1, SIG_IGN);
    CHILD_CHECK(7, raise(SIGUSR1) == 0);
    // New AF_UNIX sockets are allowed (the driver's MPS client uses them).
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    CHILD_CHECK(8, u >= 0);
    close(u);
    int null_fd = open("/dev/null", O_WRONLY);
    CHILD_CHECK(9, null_fd >= 0 && write(null_fd, "x", 1) == 1);
    return 0;
  });
  EXPECT_TRUE(r.exited_ok()) << r.Describe();
}

// A worker ends with exit(), which runs atexit handlers (in sanitizer
// builds, LeakSanitizer's check, which needs ptrace of its own threads).
TEST(Sandbox, ExitRunsCleanly) {
  ChildResult r = InChild([] {
    if (int rc = Enter()) return rc;
    std::thread([] { std::vector<int> v(1000, 1); }).join();
    exit(0);
  });
  EXPECT_TRUE(r.exited_ok()) << r.Describe();
}

struct Forbidden {
  const char* name;
  std::function<void()> call;
};

class SandboxForbidden : public ::testing::TestWithParam<int> {};

std::vector<Forbidden>& ForbiddenCalls() {
  static std::vector<Forbidden> calls = {
      {"socket_inet", [] { socket(AF_INET, SOCK_STREAM, 0); }},
      {"socket_inet6", [] { socket(AF_INET6, SOCK_DGRAM, 0); }},
      {"socket_netlink", [] { socket(AF_NETLINK, SOCK_RAW, 0); }},
      {"execve", [] {
         char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
         execve("/bin/true", argv, environ);
       }},
#ifndef RGPU_TEST_SANITIZER  // sanitizer builds allow these for LeakSanitizer
      {"ptrace", [] { ptrace(PTRACE_TRACEME, 0, nullptr, nullptr); }},
      {"fork", [] {
         if (fork() == 0) _exit(0);
       }},
#endif
      {"kill_parent", [] { kill(getppid(), 0); }},
      {"kill_group", [] { kill(0, 0); }},
      {"ioctl_tiocsti", [] {
         char c = 'x';
         ioctl(STDERR_FILENO, TIOCSTI, &c);
       }},
      {"ioctl_tiocsti_high_bits", [] {
         char c = 'x';
         syscall(SYS_ioctl, STDERR_FILENO, (1ul << 32) | TIOCSTI, &c);
       }},
      {"mount", [] { syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, nullptr); }},
      {"unshare", [] { syscall(SYS_unshare, 0); }},
      {"setuid", [] { syscall(SYS_setuid, 0); }},
      {"bpf", [] { syscall(SYS_bpf, 0, nullptr, 0); }},
      {"io_uring_setup", [] { syscall(SYS_io_uring_setup, 1, nullptr); }},
      {"process_vm_readv", [] { syscall(SYS_process_vm_readv, getppid(), nullptr, 0, nullptr, 0, 0); }},
  };
  return calls;
}

TEST_P(SandboxForbidden, KillsTheProcessWithSigsys) {
  const Forbidden& f = ForbiddenCalls()[GetParam()];
  ChildResult r = InChild([&] {
    if (int rc = Enter()) return rc;
    f.call();
    return 1;  // still alive: the call was allowed
  });
  EXPECT_TRUE(r.killed_by(SIGSYS)) << f.name << ": " << r.Describe();
}

INSTANTIATE_TEST_SUITE_P(Calls, SandboxForbidden,
                         ::testing::Range(0, static_cast<int>(ForbiddenCalls().size())),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return std::string(ForbiddenCalls()[i.param].name);
                         });

TEST(Sandbox, ThreadsInheritTheFilter) {
  ChildResult r = InChild([] {
    if (int rc = Enter()) return rc;
    std::thread t([] { socket(AF_INET, SOCK_STREAM, 0); });
    t.join();
    return 1;
  });
  EXPECT_TRUE(r.killed_by(SIGSYS)) << r.Describe();
}

TEST(Sandbox, FilterCoversThreadsStartedBefore) {
  ChildResult r = InChild([] {
    std::mutex mu;
    std::condition_variable cv;
    bool go = false;
    std::thread t([&] {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return go; });
      socket(AF_INET, SOCK_STREAM, 0);
    });
    if (int rc = Enter()) return rc;
    {
      std::lock_guard<std::mutex> lock(mu);
      go = true;
    }
    cv.notify_all();
    t.join();
    return 1;
  });
  EXPECT_TRUE(r.killed_by(SIGSYS)) << r.Describe();
}

TEST(Sandbox, NoNewPrivsAndNotDumpable) {
  ChildResult r = InChild([] {
    SandboxReport rep;
    if (int rc = Enter({}, &rep)) return rc;
    CHILD_CHECK(1, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1);
#ifndef RGPU_TEST_SANITIZER  // LeakSanitizer needs a dumpable process
    CHILD_CHECK(2, prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0);
#endif
    CHILD_CHECK(3, rep.no_new_privs && rep.seccomp && rep.seccomp_syscalls > 100);
    return 0;
  });
  EXPECT_TRUE(r.exited_ok()) << r.Describe();
}

// Prints what this host grants (in the test log: namespaces, Landlock ABI).
TEST(Sandbox, ReportsWhatItApplied) {
  ChildResult r = InChild([] {
    SandboxReport rep;
    if (int rc = Enter({}, &rep)) return rc;
    fprintf(stderr, "%s", rep.Describe().c_str());
    return rep.enabled && rep.seccomp && rep.no_new_privs ? 0 : 1;
  });
  EXPECT_TRUE(r.exited_ok()) << r.Describe();
  std::cout << "sandbox on this host: " << r.err << "\n";
}

TEST(Sandbox, RootDropsToTheUser) {
  if (geteuid() != 0) GTEST_SKIP() << "not root: there is no user to drop";
  ChildResult r = InChild([] {
    SandboxReport rep;
    if (int rc = Enter({}, &rep)) return rc;
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    getresuid(&ru, &eu, &su);
    getresgid(&rg, &eg, &sg);
    CHILD_CHECK(1, ru != 0 && eu != 0 && su != 0);
    CHILD_CHECK(2, rg != 0 && eg != 0 && sg != 0);
    CHILD_CHECK(3, rep.user_changed && rep.uid == eu);
    gid_t groups[8];
    int n = getgroups(8, groups);
    CHILD_CHECK(4, n == 1 && groups[0] == eg);
    return 0;
  });
  EXPECT_TRUE(r.exited_ok()) << r.Describe();
}

TEST(Sandbox, KeepsTheParentDeathSignal) {
  // The supervisor makes workers die with it (PR_SET_PDEATHSIG); changing
  // the user clears that unless the sandbox sets it again.
  ChildResult r = InChild([] {
    CHILD_CHECK(1, prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0) == 0);
    if (int rc = Enter()) return rc;
    int sig = 0;
    CHILD_CHECK(2, prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) == 0 && sig == SIGUSR2);
    return 0;
  });
  EXPECT_TRUE(r.exited_ok()) << r.Describe();
}

TEST(Sandbox, UnknownUserIsAnError) {
  if (geteuid() != 0) GTEST_SKIP() << "the user is looked up only as root";
  ChildResult r = InChild([] {
    SandboxOptions o;
    o.user = "rgpu-no-such-user-xyz";
    Status st = EnterSandbox(o);
    CHILD_CHECK(1, !st.ok());
    CHILD_CHECK(2, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0);  // nothing applied
    return 0;
  });
  EXPECT_TRUE(r.exited_ok()) << r.Describe();
}

TEST(Sandbox, NamespacesKeepTheConnectedSocket) {
  // A TCP connection made before the sandbox (like the worker's client
  // socket) keeps working inside a new network namespace.
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(lfd, 1), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  // The peer: answers "hello" with "olleh".
  std::thread peer([lfd] {
    int s = accept(lfd, nullptr, nullptr);
    if (s < 0) return;
    char buf[8] = {};
    if (recv(s, buf, 5, MSG_WAITALL) == 5) (void)!send(s, "olleh", 5, 0);
    close(s);
  });
  ChildResult r = InChild([&] {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHILD_CHECK(1, connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    struct stat before, after;
    CHILD_CHECK(2, stat("/proc/self/ns/net", &before) == 0);
    SandboxReport rep;
    if (int rc = Enter({}, &rep)) return rc;
    if (rep.namespaces) {
      CHILD_CHECK(3, stat("/proc/self/ns/net", &after) == 0);
      CHILD_CHECK(4, before.st_ino != after.st_ino);
    } else {
      fprintf(stderr, "namespaces not available here\n");
    }
    CHILD_CHECK(5, send(c, "hello", 5, 0) == 5);
    char buf[8] = {};
    CHILD_CHECK(6, recv(c, buf, 5, MSG_WAITALL) == 5 && memcmp(buf, "olleh", 5) == 0);
    return 0;
  });
  shutdown(lfd, SHUT_RDWR);  // unblocks accept if the child never connected
  peer.join();
  close(lfd);
  EXPECT_TRUE(r.exited_ok()) << r.Describe();
}

TEST(Sandbox, PrivateDevShm) {
  const std::string name = "/dev/shm/rgpu-sandbox-test-" + std::to_string(getpid());
  ChildResult r = InChild([&] {
    SandboxReport rep;
    if (int rc = Enter({}, &rep)) return rc;
    int fd = open(name.c_str(), O_CREAT | O_WRONLY, 0600);
    CHILD_CHECK(1, fd >= 0);
    close(fd);
    return rep.namespaces ? 0 : 3;
  });
  if (WIFEXITED(r.status) && WEXITSTATUS(r.status) == 3) GTEST_SKIP() << "no namespaces here";
  EXPECT_TRUE(r.exited_ok()) << r.Describe();
  struct stat st;
  EXPECT_NE(stat(name.c_str(), &st), 0) << "the worker's /dev/shm file is visible outside";
  unlink(name.c_str());
}

TEST(Sandbox, LandlockLimitsFiles) {
  ChildResult r = InChild([] {
    SandboxReport rep;
    if (int rc = Enter({}, &rep)) return rc;
    if (rep.landlock_abi == 0) {
      fprintf(stderr, "landlock not available\n");
      return 0;
    }
    errno = 0;
    CHILD_CHECK(1, open("/etc/passwd", O_RDONLY) < 0 && errno == EACCES);
    CHILD_CHECK(2, open("/tmp", O_RDONLY | O_DIRECTORY) < 0);
    int fd = open("/proc/self/status", O_RDONLY);
    CHILD_CHECK(3, fd >= 0);
    close(fd);
    fd = open("/dev/null", O_RDWR);
    CHILD_CHECK(4, fd >= 0);
    close(fd);
    return 0;
  });
  EXPECT_TRUE(r.exited_ok()) << r.Describe();
}

TEST(Sandbox, AuditModeReportsInsteadOfKilling) {
  ChildResult r = InChild([] {
    SandboxOptions o;
    o.seccomp_audit = true;
    if (int rc = Enter(o)) return rc;
    errno = 0;
    CHILD_CHECK(1, socket(AF_INET, SOCK_STREAM, 0) == -1 && errno == ENOSYS);
    return 0;
  });
  EXPECT_TRUE(r.exited_ok()) << r.Describe();
  EXPECT_NE(r.err.find("forbidden system call 41 (socket)"), std::string::npos) << r.err;
}

TEST(Sandbox, OffChangesNothing) {
  ChildResult r = InChild([] {
    SandboxOptions o;
    o.enabled = false;
    SandboxReport rep;
    if (int rc = Enter(o, &rep)) return rc;
    CHILD_CHECK(1, !rep.enabled);
    CHILD_CHECK(2, prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 0);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CHILD_CHECK(3, s >= 0);
    close(s);
    return 0;
  });
  EXPECT_TRUE(r.exited_ok()) << r.Describe();
}

// ---- a CUDA driver inside the sandbox --------------------------------------

// vectorAdd as PTX. The sim runs its host function of that name; a real
// driver JIT-compiles it (which loads the driver's PTX compiler library).
constexpr char kVectorAddPtx[] = R"(
.version 8.0
.target sm_80
.address_size 64
.visible .entry _Z9vectorAddPKfS0_Pfi(
  .param .u64 p0, .param .u64 p1, .param .u64 p2, .param .u32 p3)
{
  .reg .pred %p<2>;
  .reg .f32 %f<4>;
  .reg .b32 %r<6>;
  .reg .b64 %rd<11>;
  ld.param.u64 %rd1, [p0];
  ld.param.u64 %rd2, [p1];
  ld.param.u64 %rd3, [p2];
  ld.param.u32 %r2, [p3];
  mov.u32 %r3, %ctaid.x;
  mov.u32 %r4, %ntid.x;
  mov.u32 %r5, %tid.x;
  mad.lo.s32 %r1, %r3, %r4, %r5;
  setp.ge.s32 %p1, %r1, %r2;
  @%p1 bra DONE;
  cvta.to.global.u64 %rd4, %rd1;
  mul.wide.s32 %rd5, %r1, 4;
  add.s64 %rd6, %rd4, %rd5;
  cvta.to.global.u64 %rd7, %rd2;
  add.s64 %rd8, %rd7, %rd5;
  ld.global.f32 %f1, [%rd8];
  ld.global.f32 %f2, [%rd6];
  add.f32 %f3, %f2, %f1;
  cvta.to.global.u64 %rd9, %rd3;
  add.s64 %rd10, %rd9, %rd5;
  st.global.f32 [%rd10], %f3;
DONE:
  ret;
}
)";

// Loads `opts`' backend, enters the sandbox before or after cuInit, then
// does what a session does: context, memory, copies, memset, a module with a
// launch, a stream and events. Child exit code: 0 when all of it worked.
int DriverWorkload(const backend::BackendOptions& opts, bool sandbox_before_init, bool audit) {
  backend::DriverTable d;
  Status st = backend::LoadBackend(opts, &d);
  if (!st.ok()) {
    fprintf(stderr, "LoadBackend: %s\n", st.ToString().c_str());
    return 3;
  }
  SandboxOptions so;
  so.seccomp_audit = audit;
  // Bisecting a failure on a new host: RGPU_SANDBOX_TEST_DISABLE=landlock,namespaces,user,seccomp
  if (const char* off = getenv("RGPU_SANDBOX_TEST_DISABLE")) {
    std::string list = off;
    so.landlock = list.find("landlock") == std::string::npos;
    so.namespaces = list.find("namespaces") == std::string::npos;
    so.seccomp = list.find("seccomp") == std::string::npos;
    if (list.find("user") != std::string::npos) so.user.clear();
  }
  if (sandbox_before_init) {
    if (int rc = Enter(so)) return rc;
  }
  CHILD_CHECK(1, d.cuInit(0) == CUDA_SUCCESS);
  if (!sandbox_before_init) {
    if (int rc = Enter(so)) return rc;
  }
  CUdevice dev = 0;
  CHILD_CHECK(2, d.cuDeviceGet(&dev, 0) == CUDA_SUCCESS);
  CUcontext ctx = nullptr;
  CHILD_CHECK(3, d.cuDevicePrimaryCtxRetain(&ctx, dev) == CUDA_SUCCESS);
  CHILD_CHECK(4, d.cuCtxSetCurrent(ctx) == CUDA_SUCCESS);
  constexpr int n = 1000;
  std::vector<float> a(n), b(n), c(n, 0);
  for (int i = 0; i < n; ++i) {
    a[i] = static_cast<float>(i);
    b[i] = 2.0f * i;
  }
  CUdeviceptr da = 0, db = 0, dc = 0;
  CHILD_CHECK(5, d.cuMemAlloc_v2(&da, n * 4) == CUDA_SUCCESS &&
                     d.cuMemAlloc_v2(&db, n * 4) == CUDA_SUCCESS &&
                     d.cuMemAlloc_v2(&dc, n * 4) == CUDA_SUCCESS);
  CHILD_CHECK(6, d.cuMemcpyHtoD_v2(da, a.data(), n * 4) == CUDA_SUCCESS &&
                     d.cuMemcpyHtoD_v2(db, b.data(), n * 4) == CUDA_SUCCESS);
  CHILD_CHECK(7, d.cuMemsetD32_v2(dc, 0, n) == CUDA_SUCCESS);
  CUmodule mod = nullptr;
  CUfunction fn = nullptr;
  CUresult lr = d.cuModuleLoadData(&mod, kVectorAddPtx);
  if (lr != CUDA_SUCCESS) fprintf(stderr, "cuModuleLoadData: %d\n", lr);
  CHILD_CHECK(8, lr == CUDA_SUCCESS);
  CHILD_CHECK(9, d.cuModuleGetFunction(&fn, mod, "_Z9vectorAddPKfS0_Pfi") == CUDA_SUCCESS);
  CUstream stream = nullptr;
  CHILD_CHECK(10, d.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS);
  CUevent e0 = nullptr, e1 = nullptr;
  CHILD_CHECK(11, d.cuEventCreate(&e0, 0) == CUDA_SUCCESS && d.cuEventCreate(&e1, 0) == CUDA_SUCCESS);
  CHILD_CHECK(12, d.cuEventRecord(e0, stream) == CUDA_SUCCESS);
  int count = n;
  void* args[] = {&da, &db, &dc, &count};
  CHILD_CHECK(13, d.cuLaunchKernel(fn, (n + 255) / 256, 1, 1, 256, 1, 1, 0, stream, args,
                                   nullptr) == CUDA_SUCCESS);
  CHILD_CHECK(14, d.cuEventRecord(e1, stream) == CUDA_SUCCESS);
  CHILD_CHECK(15, d.cuStreamSynchronize(stream) == CUDA_SUCCESS);
  float ms = -1;
  CHILD_CHECK(16, d.cuEventElapsedTime_v2(&ms, e0, e1) == CUDA_SUCCESS && ms >= 0);
  CHILD_CHECK(17, d.cuMemcpyDtoH_v2(c.data(), dc, n * 4) == CUDA_SUCCESS);
  for (int i = 0; i < n; ++i) CHILD_CHECK(18, c[i] == 3.0f * i);
  CHILD_CHECK(19, d.cuCtxSynchronize() == CUDA_SUCCESS);
  d.cuEventDestroy_v2(e0);
  d.cuEventDestroy_v2(e1);
  d.cuStreamDestroy_v2(stream);
  d.cuModuleUnload(mod);
  d.cuMemFree_v2(da);
  d.cuMemFree_v2(db);
  d.cuMemFree_v2(dc);
  CHILD_CHECK(20, d.cuDevicePrimaryCtxRelease_v2(dev) == CUDA_SUCCESS);
  return 0;
}

#ifdef RGPU_SIM_PROFILE
TEST(Sandbox, SimBackendWorksInside) {
  backend::BackendOptions o;
  o.kind = "sim";
  o.profile_path = RGPU_SIM_PROFILE;
  for (bool before : {true, false}) {
    ChildResult r = InChild([&] { return DriverWorkload(o, before, false); });
    EXPECT_TRUE(r.exited_ok()) << (before ? "before" : "after") << " cuInit: " << r.Describe();
  }
}
#endif

class SandboxRealDriver : public ::testing::TestWithParam<bool> {};

TEST_P(SandboxRealDriver, WorksInside) {
  backend::BackendOptions o;
  o.kind = "cuda";
  {
    // Probe in a child: a driver that loads leaves state we do not want here.
    ChildResult probe = InChild([&] {
      backend::DriverTable d;
      Status st = backend::LoadBackend(o, &d);
      if (!st.ok()) {
        fprintf(stderr, "%s", st.ToString().c_str());
        return 1;
      }
      return d.cuInit(0) == CUDA_SUCCESS ? 0 : 2;
    });
    if (!probe.exited_ok()) GTEST_SKIP() << "no usable real CUDA driver: " << probe.err;
  }
  bool audit = getenv("RGPU_SANDBOX_TEST_AUDIT") != nullptr;
  ChildResult r = InChild([&] { return DriverWorkload(o, GetParam(), audit); });
  EXPECT_TRUE(r.exited_ok()) << r.Describe();
  if (audit) {
    std::cout << "---- audit (" << (GetParam() ? "before" : "after") << " cuInit) ----\n"
              << r.err << "----\n";
    EXPECT_EQ(r.err.find("forbidden system call"), std::string::npos) << r.err;
  }
}

INSTANTIATE_TEST_SUITE_P(EnteredBeforeCuInit, SandboxRealDriver, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? std::string("BeforeCuInit") : std::string("AfterCuInit");
                         });

}  // namespace
}  // namespace rgpu::worker
