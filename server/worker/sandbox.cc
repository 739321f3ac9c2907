// The worker sandbox. See sandbox.h for what each step does and why; this
// file holds the data (the system-call table, the Landlock rights) and the
// mechanics.
#include "server/worker/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

#include "common/log.h"

// Sanitizer builds (tests only) need a few allowances for LeakSanitizer; see
// sandbox.h.
#if defined(__SANITIZE_ADDRESS__)
#define RGPU_SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RGPU_SANDBOX_SANITIZER 1
#endif
#endif

namespace rgpu::worker {
namespace {

// ---- the system-call allow-list ----------------------------------------------
//
// One row per call a worker may make: the real CUDA driver (libcuda
// 580.159.04 on an H200, entered before and after cuInit; see sandbox_test.cc
// SandboxRealDriver, which runs wherever a real driver loads), glibc,
// the C++ runtime, the sim backend and the worker's own socket I/O.
// A name the architecture does not have (e.g. `open` on aarch64) is skipped.
// Everything else is refused with the default action (kill the process).
//
// How to add a call: run the failing workload with SandboxOptions::
// seccomp_audit (the log names each forbidden call), add a row here with the
// narrowest rule that works, and say who needs it.
enum class Rule : uint8_t {
  kAllow,       // any arguments
  kSelf,        // arg0 == this process's pid: signals and limits of itself only
  kSelfOrZero,  // arg0 == 0 or this pid (prlimit64: 0 means the caller)
  kUnix,        // arg0 == AF_UNIX (socket, socketpair)
  kThread,      // clone with CLONE_THREAD: threads, never a new process
  kEnosys,      // fails with ENOSYS instead (clone3: glibc falls back to clone,
                // whose flags a filter can see; clone3's are behind a pointer)
  kEacces,      // fails with EACCES, as for an unprivileged process: for calls
                // the driver tries and tolerates failing
  kIoctl,       // any request except terminal input injection (TIOCSTI,
                // TIOCLINUX): those are refused by a second filter
};

struct SyscallRow {
  const char* name;
  Rule rule;
};

constexpr SyscallRow kSyscalls[] = {
    // Memory: malloc, the driver's pinned and mapped buffers, the sim's arena.
    {"brk", Rule::kAllow}, {"mmap", Rule::kAllow}, {"munmap", Rule::kAllow},
    {"mprotect", Rule::kAllow}, {"madvise", Rule::kAllow}, {"mremap", Rule::kAllow},
    {"mlock", Rule::kAllow}, {"mlock2", Rule::kAllow}, {"munlock", Rule::kAllow},
    {"mincore", Rule::kAllow}, {"msync", Rule::kAllow}, {"membarrier", Rule::kAllow},
    {"get_mempolicy", Rule::kAllow}, {"set_mempolicy", Rule::kAllow}, {"mbind", Rule::kAllow},
    {"memfd_create", Rule::kAllow},
    // Files. Which paths is Landlock's job (a filter cannot read a path).
    {"read", Rule::kAllow}, {"write", Rule::kAllow}, {"readv", Rule::kAllow},
    {"writev", Rule::kAllow}, {"pread64", Rule::kAllow}, {"pwrite64", Rule::kAllow},
    {"preadv", Rule::kAllow}, {"pwritev", Rule::kAllow}, {"lseek", Rule::kAllow},
    {"open", Rule::kAllow}, {"openat", Rule::kAllow}, {"close", Rule::kAllow},
    {"close_range", Rule::kAllow}, {"fstat", Rule::kAllow}, {"stat", Rule::kAllow},
    {"lstat", Rule::kAllow}, {"newfstatat", Rule::kAllow}, {"statx", Rule::kAllow},
    {"fstatfs", Rule::kAllow}, {"statfs", Rule::kAllow}, {"access", Rule::kAllow},
    {"faccessat", Rule::kAllow}, {"faccessat2", Rule::kAllow}, {"readlink", Rule::kAllow},
    {"readlinkat", Rule::kAllow}, {"getdents64", Rule::kAllow},
    {"getdents", Rule::kAllow},  // LeakSanitizer lists /proc/self/task with the old call
    {"getcwd", Rule::kAllow},
    {"fcntl", Rule::kAllow}, {"dup", Rule::kAllow}, {"dup2", Rule::kAllow},
    {"dup3", Rule::kAllow}, {"pipe", Rule::kAllow}, {"pipe2", Rule::kAllow},
    {"flock", Rule::kAllow}, {"fsync", Rule::kAllow}, {"fdatasync", Rule::kAllow},
    {"ftruncate", Rule::kAllow}, {"fallocate", Rule::kAllow}, {"fadvise64", Rule::kAllow},
    // The driver's JIT cache and /dev/shm files (Landlock / file modes decide where).
    {"mkdir", Rule::kAllow}, {"mkdirat", Rule::kAllow}, {"unlink", Rule::kAllow},
    {"unlinkat", Rule::kAllow}, {"rename", Rule::kAllow}, {"renameat", Rule::kAllow},
    {"renameat2", Rule::kAllow},
    // cuInit (580) tries to create /dev/char/MAJ:MIN -> ../nvidiaN links (as
    // root would) and carries on when it cannot.
    {"symlink", Rule::kEacces}, {"symlinkat", Rule::kEacces},
    // Device control: the NVIDIA device nodes are driven by ioctl.
    {"ioctl", Rule::kIoctl},
    // Waiting for I/O and events.
    {"poll", Rule::kAllow}, {"ppoll", Rule::kAllow}, {"select", Rule::kAllow},
    {"pselect6", Rule::kAllow}, {"epoll_create", Rule::kAllow}, {"epoll_create1", Rule::kAllow},
    {"epoll_ctl", Rule::kAllow}, {"epoll_wait", Rule::kAllow}, {"epoll_pwait", Rule::kAllow},
    {"epoll_pwait2", Rule::kAllow}, {"eventfd", Rule::kAllow}, {"eventfd2", Rule::kAllow},
    {"timerfd_create", Rule::kAllow}, {"timerfd_settime", Rule::kAllow},
    {"timerfd_gettime", Rule::kAllow},
    // Sockets: the inherited client socket; AF_UNIX only for new ones (the
    // driver reaches the MPS daemon that way). No AF_INET / AF_NETLINK.
    // cuInit binds an abstract AF_UNIX socket "@cuda-uvmfd-<netns>-<pid>"
    // (it fails with CUDA_ERROR_OPERATING_SYSTEM otherwise); in the
    // worker's own network namespace no other process sees it.
    {"socket", Rule::kUnix}, {"socketpair", Rule::kUnix}, {"connect", Rule::kAllow},
    {"bind", Rule::kAllow}, {"listen", Rule::kAllow}, {"accept", Rule::kAllow},
    {"accept4", Rule::kAllow},
    {"recvfrom", Rule::kAllow}, {"sendto", Rule::kAllow}, {"recvmsg", Rule::kAllow},
    {"sendmsg", Rule::kAllow}, {"recvmmsg", Rule::kAllow}, {"sendmmsg", Rule::kAllow},
    {"shutdown", Rule::kAllow}, {"getsockopt", Rule::kAllow}, {"setsockopt", Rule::kAllow},
    {"getsockname", Rule::kAllow}, {"getpeername", Rule::kAllow},
    // Time.
    {"clock_gettime", Rule::kAllow}, {"clock_getres", Rule::kAllow},
    {"clock_nanosleep", Rule::kAllow}, {"nanosleep", Rule::kAllow},
    {"gettimeofday", Rule::kAllow}, {"time", Rule::kAllow}, {"timer_create", Rule::kAllow},
    {"timer_settime", Rule::kAllow}, {"timer_gettime", Rule::kAllow},
    {"timer_getoverrun", Rule::kAllow}, {"timer_delete", Rule::kAllow},
    {"getitimer", Rule::kAllow}, {"setitimer", Rule::kAllow},
    // Threads and scheduling (the driver starts threads, sets their affinity).
    {"clone", Rule::kThread}, {"clone3", Rule::kEnosys}, {"futex", Rule::kAllow},
    {"futex_waitv", Rule::kAllow}, {"set_robust_list", Rule::kAllow},
    {"get_robust_list", Rule::kAllow}, {"set_tid_address", Rule::kAllow},
    {"rseq", Rule::kAllow}, {"sched_yield", Rule::kAllow}, {"sched_getaffinity", Rule::kAllow},
    {"sched_setaffinity", Rule::kAllow}, {"sched_getparam", Rule::kAllow},
    {"sched_getscheduler", Rule::kAllow}, {"sched_setscheduler", Rule::kAllow},
    {"sched_get_priority_max", Rule::kAllow}, {"sched_get_priority_min", Rule::kAllow},
    {"sched_getattr", Rule::kAllow}, {"getpriority", Rule::kAllow},
    {"setpriority", Rule::kAllow}, {"getcpu", Rule::kAllow},
    // Who am I, limits, facts.
    {"getpid", Rule::kAllow}, {"gettid", Rule::kAllow}, {"getppid", Rule::kAllow},
    {"getuid", Rule::kAllow}, {"geteuid", Rule::kAllow}, {"getgid", Rule::kAllow},
    {"getegid", Rule::kAllow}, {"getresuid", Rule::kAllow}, {"getresgid", Rule::kAllow},
    {"getgroups", Rule::kAllow}, {"getpgrp", Rule::kAllow}, {"getrlimit", Rule::kAllow},
    {"setrlimit", Rule::kAllow}, {"prlimit64", Rule::kSelfOrZero}, {"getrusage", Rule::kAllow},
    {"sysinfo", Rule::kAllow}, {"uname", Rule::kAllow}, {"times", Rule::kAllow},
    {"getrandom", Rule::kAllow}, {"capget", Rule::kAllow},
    // Signals: handlers, masks, and signals to itself only (raise, abort,
    // pthread_kill); never to the supervisor or another worker.
    {"rt_sigaction", Rule::kAllow}, {"rt_sigprocmask", Rule::kAllow},
    {"rt_sigreturn", Rule::kAllow}, {"rt_sigpending", Rule::kAllow},
    {"rt_sigtimedwait", Rule::kAllow}, {"rt_sigsuspend", Rule::kAllow},
    {"sigaltstack", Rule::kAllow}, {"restart_syscall", Rule::kAllow}, {"kill", Rule::kSelf},
    {"tgkill", Rule::kSelf}, {"rt_sigqueueinfo", Rule::kSelf},
    {"rt_tgsigqueueinfo", Rule::kSelf},
    // The process itself.
    {"exit", Rule::kAllow}, {"exit_group", Rule::kAllow}, {"arch_prctl", Rule::kAllow},
    // prctl: thread names (PR_SET_NAME), VMA names, reading flags. With
    // no_new_privs and no capabilities none of its options gains anything.
    {"prctl", Rule::kAllow},
#ifdef RGPU_SANDBOX_SANITIZER
    // Sanitizer builds only (tests): LeakSanitizer stops the world at exit
    // from a helper task it clones and that ptraces every thread.
    {"ptrace", Rule::kAllow}, {"wait4", Rule::kAllow},
#endif
};

// The terminal requests refused on ioctl (they would let a worker type into
// the supervisor's terminal when stderr is one).
constexpr unsigned long kRefusedIoctls[] = {TIOCSTI, TIOCLINUX};

// ---- Landlock (linux/landlock.h, ABI 1-6; defined here so that older
// headers build the same code) ------------------------------------------------

constexpr uint64_t kFsExecute = 1ull << 0, kFsWriteFile = 1ull << 1, kFsReadFile = 1ull << 2,
                   kFsReadDir = 1ull << 3, kFsRemoveDir = 1ull << 4, kFsRemoveFile = 1ull << 5,
                   kFsMakeChar = 1ull << 6, kFsMakeDir = 1ull << 7, kFsMakeReg = 1ull << 8,
                   kFsMakeSock = 1ull << 9, kFsMakeFifo = 1ull << 10, kFsMakeBlock = 1ull << 11,
                   kFsMakeSym = 1ull << 12, kFsRefer = 1ull << 13, kFsTruncate = 1ull << 14,
                   kFsIoctlDev = 1ull << 15;
constexpr uint64_t kNetBindTcp = 1ull << 0, kNetConnectTcp = 1ull << 1;
constexpr uint64_t kScopeAbstractUnix = 1ull << 0, kScopeSignal = 1ull << 1;
constexpr uint32_t kLandlockCreateRulesetVersion = 1u << 0;
constexpr int kLandlockRulePathBeneath = 1;
// Rights that apply to a file (a rule on a non-directory may hold only these).
constexpr uint64_t kFsFileRights = kFsExecute | kFsWriteFile | kFsReadFile | kFsTruncate | kFsIoctlDev;
// What allow_paths and allow_read_paths grant (masked by what the ABI knows).
constexpr uint64_t kFsReadWrite = kFsReadFile | kFsReadDir | kFsWriteFile | kFsTruncate |
                                  kFsIoctlDev | kFsMakeReg | kFsMakeDir | kFsRemoveFile |
                                  kFsRemoveDir;
constexpr uint64_t kFsReadOnly = kFsReadFile | kFsReadDir | kFsExecute;

struct LandlockRulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};
struct __attribute__((packed)) LandlockPathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule 445
#define __NR_landlock_restrict_self 446
#endif

uint64_t HandledFs(int abi) {
  uint64_t fs = (kFsMakeSym << 1) - 1;  // ABI 1: bits 0..12
  if (abi >= 2) fs |= kFsRefer;
  if (abi >= 3) fs |= kFsTruncate;
  if (abi >= 5) fs |= kFsIoctlDev;
  return fs;
}

std::string ErrnoText(int err) { return std::string(strerror(err)); }

// Expands globs; keeps existing plain paths. Missing paths are skipped.
std::vector<std::string> Expand(const std::vector<std::string>& patterns) {
  std::vector<std::string> out;
  for (const std::string& p : patterns) {
    if (p.find_first_of("*?[") == std::string::npos) {
      struct stat st;
      if (stat(p.c_str(), &st) == 0) out.push_back(p);
      continue;
    }
    glob_t g{};
    if (glob(p.c_str(), 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
    }
    globfree(&g);
  }
  return out;
}

int CountThreads() {
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return 0;
  int n = 0;
  while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

bool WriteFile(const char* path, const std::string& text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  return ok;
}

// ---- the steps ----------------------------------------------------------------

struct Target {
  bool change = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

Status ResolveUser(const SandboxOptions& o, Target* t) {
  if (geteuid() != 0) {
    LogOnce(LogLevel::kWarn, "sandbox-user",
            "sandbox: not running as root: keeping uid %u (cannot switch to user '%s')",
            geteuid(), o.user.c_str());
    return {};
  }
  if (o.user.empty()) {
    LogOnce(LogLevel::kWarn, "sandbox-user", "sandbox: no user given: the worker keeps uid 0");
    return {};
  }
  std::vector<char> buf(16384);
  passwd pw{}, *found = nullptr;
  int err = getpwnam_r(o.user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (found == nullptr) {
    return Status::Invalid("sandbox: user '" + o.user + "': " +
                           (err ? ErrnoText(err) : std::string("no such user")));
  }
  t->change = true;
  t->uid = pw.pw_uid;
  t->gid = pw.pw_gid;
  if (t->uid == 0) LogOnce(LogLevel::kWarn, "sandbox-user0", "sandbox: user '%s' is uid 0", o.user.c_str());
  return {};
}

void EnterNamespaces(SandboxReport* r) {
  const int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET;
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (unshare(flags) != 0) {
    int err = errno;
    // Without CAP_SYS_ADMIN: a user namespace of our own grants it there.
    if (err != EPERM || unshare(CLONE_NEWUSER | flags) != 0) {
      LogOnce(LogLevel::kWarn, "sandbox-ns",
              "sandbox: cannot unshare mount/IPC/network namespaces (%s); continuing without",
              ErrnoText(errno).c_str());
      return;
    }
    r->user_namespace = true;
    // Map our ids to themselves; setgroups must be denied before gid_map.
    if (!WriteFile("/proc/self/setgroups", "deny") ||
        !WriteFile("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1") ||
        !WriteFile("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1")) {
      LogOnce(LogLevel::kWarn, "sandbox-ns-map", "sandbox: user namespace id maps: %s",
              ErrnoText(errno).c_str());
    }
  }
  r->namespaces = true;
  // Nothing mounted here propagates back, nothing from outside arrives.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    LogOnce(LogLevel::kWarn, "sandbox-mnt", "sandbox: making mounts private: %s",
            ErrnoText(errno).c_str());
    return;
  }
  // A /dev/shm of its own: POSIX shared memory of other sessions' workers
  // (same user) stays out of reach; the IPC namespace covers System V only.
  struct stat st;
  if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
      mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
            "mode=1777,size=256m") != 0) {
    LogOnce(LogLevel::kWarn, "sandbox-shm", "sandbox: private /dev/shm: %s",
            ErrnoText(errno).c_str());
  }
}

Status ApplyLandlock(const std::vector<std::string>& rw,
                     const std::vector<std::string>& ro, SandboxReport* r) {
  long abi = syscall(__NR_landlock_create_ruleset, nullptr, 0, kLandlockCreateRulesetVersion);
  if (abi < 1) {
    const char* why = errno == EOPNOTSUPP ? "disabled in this kernel's LSM list"
                                          : "not in this kernel (needs Linux 5.13)";
    LogOnce(LogLevel::kWarn, "sandbox-landlock",
            "sandbox: Landlock %s: file access is limited by file modes only", why);
    return {};
  }
  LandlockRulesetAttr attr{};
  attr.handled_access_fs = HandledFs(static_cast<int>(abi));
  size_t attr_size = sizeof(uint64_t);
  if (abi >= 4) {
    attr.handled_access_net = kNetBindTcp | kNetConnectTcp;  // no rule: none allowed
    attr_size = 2 * sizeof(uint64_t);
  }
  if (abi >= 6) {
    attr.scoped = kScopeAbstractUnix | kScopeSignal;
    attr_size = sizeof attr;
  }
  int ruleset = static_cast<int>(syscall(__NR_landlock_create_ruleset, &attr, attr_size, 0));
  if (ruleset < 0) return Status::Errno(Code::kInternal, "sandbox: landlock_create_ruleset", errno);
  int rules = 0;
  auto add = [&](const std::string& path, uint64_t rights) -> Status {
    int fd = open(path.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) return {};  // vanished since Expand: nothing to allow
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) rights &= kFsFileRights;
    LandlockPathBeneathAttr pb{rights & attr.handled_access_fs, fd};
    long rc = syscall(__NR_landlock_add_rule, ruleset, kLandlockRulePathBeneath, &pb, 0);
    int err = errno;
    close(fd);
    if (rc != 0) return Status::Errno(Code::kInternal, "sandbox: landlock rule for " + path, err);
    ++rules;
    return {};
  };
  Status st;
  for (const std::string& p : rw) {
    if (st.ok()) st = add(p, kFsReadWrite);
  }
  for (const std::string& p : ro) {
    if (st.ok()) st = add(p, kFsReadOnly);
  }
  if (st.ok() && syscall(__NR_landlock_restrict_self, ruleset, 0) != 0)
    st = Status::Errno(Code::kInternal, "sandbox: landlock_restrict_self", errno);
  close(ruleset);
  if (!st.ok()) return st;
  r->landlock_abi = static_cast<int>(abi);
  r->landlock_rules = rules;
  return {};
}

Status ChangeUser(const Target& t, SandboxReport* r) {
  if (t.change) {
    // A change of credentials clears the parent-death signal (the
    // supervisor sets SIGKILL so that workers die with it): keep it.
    int pdeath = 0;
    prctl(PR_GET_PDEATHSIG, &pdeath, 0, 0, 0);
    pid_t parent = getppid();
    if (setgroups(1, &t.gid) != 0) return Status::Errno(Code::kInternal, "sandbox: setgroups", errno);
    if (setresgid(t.gid, t.gid, t.gid) != 0)
      return Status::Errno(Code::kInternal, "sandbox: setresgid", errno);
    if (setresuid(t.uid, t.uid, t.uid) != 0)
      return Status::Errno(Code::kInternal, "sandbox: setresuid", errno);
    uid_t ru, eu, su;
    getresuid(&ru, &eu, &su);
    if (ru != t.uid || eu != t.uid || su != t.uid)
      return Status::Internal("sandbox: uid did not change");
    if (t.uid != 0 && setuid(0) == 0) return Status::Internal("sandbox: could regain uid 0");
    if (pdeath != 0) {
      if (prctl(PR_SET_PDEATHSIG, pdeath, 0, 0, 0) != 0)
        return Status::Errno(Code::kInternal, "sandbox: PR_SET_PDEATHSIG", errno);
      if (getppid() != parent) kill(getpid(), pdeath);  // the parent died meanwhile
    }
    r->user_changed = true;
  }
  // Whatever is left (root kept, or a user namespace's full set) goes.
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capset, &hdr, data) != 0)
    return Status::Errno(Code::kInternal, "sandbox: dropping capabilities", errno);
  r->uid = geteuid();
  r->gid = getegid();
  return {};
}

// ---- seccomp ---------------------------------------------------------------------

// Audit mode: names for the SIGSYS handler, resolved before the filter is in.
constexpr int kMaxSyscallNr = 512;
const char* g_syscall_names[kMaxSyscallNr];
std::atomic<bool> g_audit_logged[kMaxSyscallNr];

void AppendText(char* buf, size_t* n, size_t cap, const char* s) {
  while (*s && *n + 1 < cap) buf[(*n)++] = *s++;
}

// Async-signal-safe: formats by hand, writes with write(2) (allowed).
void AuditHandler(int, siginfo_t* info, void* uctx) {
  int nr = info->si_syscall;
  bool first = nr < 0 || nr >= kMaxSyscallNr || !g_audit_logged[nr].exchange(true);
  if (first) {
    char buf[160];
    size_t n = 0;
    char num[16];
    int v = nr < 0 ? 0 : nr, k = 0;
    do num[k++] = static_cast<char>('0' + v % 10); while ((v /= 10) != 0 && k < 15);
    AppendText(buf, &n, sizeof buf, "rgpu-worker: sandbox: forbidden system call ");
    while (k > 0 && n + 1 < sizeof buf) buf[n++] = num[--k];
    AppendText(buf, &n, sizeof buf, " (");
    const char* name = nr >= 0 && nr < kMaxSyscallNr ? g_syscall_names[nr] : nullptr;
    AppendText(buf, &n, sizeof buf, name ? name : "?");
    AppendText(buf, &n, sizeof buf, "): failed with ENOSYS (audit mode)\n");
    ssize_t ignored = write(STDERR_FILENO, buf, n);
    (void)ignored;
  }
  auto* uc = static_cast<ucontext_t*>(uctx);
#if defined(__x86_64__)
  uc->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
#elif defined(__aarch64__)
  uc->uc_mcontext.regs[0] = static_cast<uint64_t>(-ENOSYS);
#else
#error "sandbox audit mode: set the syscall return register for this architecture"
#endif
}

// A filter of its own for ioctl: kills (or traps, in audit mode) the
// requests in kRefusedIoctls, compared on the low 32 bits of the request as
// the kernel reads it (an int), and allows everything else, which the main
// filter then judges. Filters stack; the strictest answer wins.
Status InstallIoctlFilter(uint32_t deny) {
#if defined(__x86_64__)
  constexpr uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
  constexpr uint32_t kArch = AUDIT_ARCH_AARCH64;
#endif
  constexpr uint32_t kArg1Low = offsetof(seccomp_data, args[1]);  // little-endian
  static_assert(std::size(kRefusedIoctls) == 2);
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, deny),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 4),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArg1Low),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(kRefusedIoctls[0]), 1, 0),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(kRefusedIoctls[1]), 0, 1),
      BPF_STMT(BPF_RET | BPF_K, deny),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(code)), code};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0)
    return Status::Errno(Code::kInternal, "sandbox: seccomp ioctl filter", errno);
  return {};
}

Status InstallSeccomp(const SandboxOptions& o, SandboxReport* r) {
  const uint32_t deny = o.seccomp_audit ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS;
  if (o.seccomp_audit) {
    for (int i = 0; i < kMaxSyscallNr; ++i)
      g_syscall_names[i] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, i);  // kept
    struct sigaction sa {};
    sa.sa_sigaction = AuditHandler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, nullptr) != 0)
      return Status::Errno(Code::kInternal, "sandbox: SIGSYS handler", errno);
    LogOnce(LogLevel::kWarn, "sandbox-audit",
            "sandbox: seccomp in AUDIT mode: forbidden calls fail instead of killing (diagnosis only)");
  }
  scmp_filter_ctx ctx = seccomp_init(deny);
  if (ctx == nullptr) return Status::Internal("sandbox: seccomp_init failed");
  struct Closer {
    scmp_filter_ctx c;
    ~Closer() { seccomp_release(c); }
  } closer{ctx};
  // Every thread gets the filter; a call from another ABI (i386, x32) is denied.
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
  if (rc == 0) rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, deny);
  if (rc != 0) return Status::Errno(Code::kInternal, "sandbox: seccomp attributes", -rc);

  const scmp_datum_t pid = static_cast<scmp_datum_t>(getpid());
  int rows = 0;
  for (const SyscallRow& row : kSyscalls) {
    int nr = seccomp_syscall_resolve_name(row.name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    switch (row.rule) {
      case Rule::kAllow:
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        break;
      case Rule::kSelf:
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, pid));
        break;
      case Rule::kSelfOrZero:
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, pid));
        if (rc == 0) rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, 0));
        break;
      case Rule::kUnix:
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu, AF_UNIX));
        break;
      case Rule::kThread:
#ifdef RGPU_SANDBOX_SANITIZER
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);  // LSan's helper task
#else
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
#endif
        break;
      case Rule::kEnosys:
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
        break;
      case Rule::kEacces:
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), nr, 0);
        break;
      case Rule::kIoctl:
        // The refused requests are a second filter (InstallIoctlFilter):
        // libseccomp cannot express "all but these" on one argument.
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        break;
    }
    if (rc != 0)
      return Status::Errno(Code::kInternal, std::string("sandbox: seccomp rule for ") + row.name, -rc);
    ++rows;
  }
  // The ioctl filter first: once the main filter is in, seccomp(2) is gone.
  RGPU_RETURN_IF_ERROR(InstallIoctlFilter(deny));
  rc = seccomp_load(ctx);
  if (rc != 0) return Status::Errno(Code::kInternal, "sandbox: seccomp_load", -rc);
  r->seccomp = true;
  r->seccomp_syscalls = rows;
  return {};
}

}  // namespace

std::vector<std::string> DefaultSandboxWritePaths() {
  // /proc/self/task: the driver names the threads it starts at cuInit by
  // writing /proc/self/task/TID/comm (pthread_setname_np); only this
  // process's own task directory is writable.
  return {"/dev/nvidiactl", "/dev/nvidia[0-9]*", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools",
          "/dev/nvidia-modeset", "/dev/nvidia-caps", "/dev/nvidia-caps-imex-channels",
          "/dev/null", "/dev/zero", "/dev/urandom", "/dev/shm", "/proc/self/task"};
}

std::vector<std::string> DefaultSandboxReadPaths() {
  return {"/proc", "/sys", "/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64",
          "/usr/local/cuda", "/usr/local/nvidia", "/usr/share/nvidia", "/etc/ld.so.cache",
          "/etc/nvidia"};
}

std::string SandboxReport::Describe() const {
  if (!enabled) return "off";
  std::string s = "uid " + std::to_string(uid) + " gid " + std::to_string(gid);
  s += user_changed ? " (switched)" : " (unchanged)";
  s += namespaces ? (user_namespace ? "; namespaces user,mnt,ipc,net" : "; namespaces mnt,ipc,net")
                  : "; no namespaces";
  s += landlock_abi ? "; landlock ABI " + std::to_string(landlock_abi) + " (" +
                          std::to_string(landlock_rules) + " paths)"
                    : "; no landlock";
  s += seccomp ? "; seccomp " + std::to_string(seccomp_syscalls) + " calls" : "; no seccomp";
  s += no_new_privs ? "; no_new_privs" : "";
  if (threads_before > 1) s += "; " + std::to_string(threads_before) + " threads before";
  return s;
}

Status EnterSandbox(const SandboxOptions& o, SandboxReport* report) {
  SandboxReport local;
  SandboxReport* r = report != nullptr ? report : &local;
  *r = SandboxReport{};
  if (!o.enabled) {
    LogOnce(LogLevel::kWarn, "sandbox-off", "sandbox: off (--sandbox off): the worker runs unconfined");
    return {};
  }
  r->enabled = true;
  r->threads_before = CountThreads();
  if (r->threads_before > 1) {
    LogOnce(LogLevel::kWarn, "sandbox-threads",
            "sandbox: %d threads already running: namespaces and Landlock bind only this thread "
            "and those it starts (enter the sandbox before cuInit)", r->threads_before);
  }
  // 1. Everything that needs the unconfined process: user database, globs.
  Target target;
  RGPU_RETURN_IF_ERROR(ResolveUser(o, &target));
  std::vector<std::string> rw = Expand(o.allow_paths), ro = Expand(o.allow_read_paths);
  // 2. Namespaces (root, or a user namespace of our own).
  if (o.namespaces) EnterNamespaces(r);
  // 3. No privilege from execve, no ptrace / core dumps by others.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return Status::Errno(Code::kInternal, "sandbox: PR_SET_NO_NEW_PRIVS", errno);
  r->no_new_privs = true;
#ifndef RGPU_SANDBOX_SANITIZER
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    return Status::Errno(Code::kInternal, "sandbox: PR_SET_DUMPABLE", errno);
#endif
  // 4. Files.
  if (o.landlock) RGPU_RETURN_IF_ERROR(ApplyLandlock(rw, ro, r));
  // 5. User and capabilities.
  RGPU_RETURN_IF_ERROR(ChangeUser(target, r));
#ifdef RGPU_SANDBOX_SANITIZER
  // LeakSanitizer ptraces this process's threads from a helper process at
  // exit, which a non-dumpable target refuses (a user change clears the
  // flag by itself): without this a sanitizer build hangs at exit.
  prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
  // 6. System calls, last: the steps above need calls it forbids.
  if (o.seccomp) RGPU_RETURN_IF_ERROR(InstallSeccomp(o, r));
  RGPU_LOG_INFO("sandbox: %s", r->Describe().c_str());
  return {};
}

}  // namespace rgpu::worker
