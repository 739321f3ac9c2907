// The worker sandbox: what a worker process may still do once it serves a
// client. A worker runs code paths chosen by an untrusted peer (handlers,
// image parsers, the CUDA driver itself); if one of them is subverted, the
// sandbox keeps the damage inside that one session.
//
// EnterSandbox() applies, in this order (each step needs the ones before):
//   1. user lookup   the target user's uid/gid are resolved first, while NSS
//                    (files, sockets, dlopen) still works.
//   2. namespaces    unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET): a new
//                    network namespace has no interfaces (the client's socket,
//                    already connected, is inherited and keeps working), a new
//                    IPC namespace hides System V IPC objects and POSIX
//                    message queues of other processes, mounts are made private so nothing
//                    propagates, and /dev/shm is a fresh tmpfs (POSIX shared
//                    memory of other workers, same user, stays out of
//                    reach). Needs root; as another user it is tried with
//                    CLONE_NEWUSER (uid and gid map to themselves). A PID
//                    namespace is not possible: unshare(CLONE_NEWPID) affects
//                    only children, never the running process (the
//                    supervisor could start workers with clone(CLONE_NEWPID)).
//   3. no_new_privs  PR_SET_NO_NEW_PRIVS, always: execve can never gain
//                    privileges (setuid binaries, file capabilities).
//                    PR_SET_DUMPABLE 0, always: another process of the same
//                    user cannot ptrace this one or read its /proc/PID/mem,
//                    and no core dump holds session data.
//   4. Landlock      (Linux >= 5.13, when the LSM is enabled) files can be
//                    opened only below `allow_paths` (read and write, device
//                    ioctls) and `allow_read_paths` (read, execute). With ABI
//                    >= 4 TCP bind/connect are refused; with ABI >= 6 signals
//                    and abstract unix sockets outside the worker are too.
//   5. user          when running as root (euid 0): setgroups({gid}),
//                    setresgid, setresuid to `user` (default "nobody"); all
//                    capabilities are gone afterwards. A worker that is not
//                    root keeps its user (nothing to drop). The parent-death
//                    signal (which a credential change clears) is set again.
//   6. seccomp       an allow-list of system calls (the table in sandbox.cc);
//                    any other call kills the whole worker process with
//                    SIGSYS (SECCOMP_RET_KILL_PROCESS), never the supervisor
//                    or another session. Installed with TSYNC: every thread
//                    of the process gets it. Among what it refuses: execve,
//                    fork (clone without CLONE_THREAD), ptrace, socket other
//                    than AF_UNIX, mount, bpf, io_uring, kill / tgkill of
//                    another process, TIOCSTI on a terminal.
//
// What is refused versus skipped. A step the host or the privileges do not
// allow (not root: no user change; no Landlock in the kernel; namespaces
// refused) is skipped and logged once as a warning, and the rest still
// applies. A step that should work and fails (unknown user, seccomp refused
// by the kernel, setresuid failing) returns a non-OK Status, and the worker
// must then refuse the session (fail closed): a half-entered sandbox is
// reported, never used silently.
//
// Threads. seccomp (TSYNC), no_new_privs (set by TSYNC), the user change
// (glibc applies set*id to every thread) and dumpable apply to the whole
// process. Namespaces and Landlock apply to the calling thread and to the
// threads it starts afterwards only. Call EnterSandbox while the worker is
// still single-threaded, i.e. after LoadBackend (dlopen starts no threads)
// and before cuInit (the real driver starts threads there). The report says
// how many threads were running.
//
// Sanitizer builds (RGPU_SANITIZE, compiled with ASan): LeakSanitizer checks
// leaks at exit by ptracing the threads from a helper process; there the
// table also allows what it needs (ptrace, wait4, any clone) and the process
// stays dumpable. Such builds are for tests only.
//
// Threading: call once, from the worker's main thread, before serving.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace rgpu::worker {

// Paths a CUDA worker must still open (globs allowed; a pattern that matches
// nothing is skipped). Read-write: the NVIDIA device nodes, /dev/null,
// /dev/zero, /dev/urandom, /dev/shm (the driver's shared memory) and
// /proc/self/task (the driver names its threads through .../TID/comm).
//
// What driver 580 does inside the sandbox (checked on an H200, entered
// before cuInit): cuInit binds an abstract AF_UNIX socket
// "@cuda-uvmfd-<netns>-<pid>" and listens on it (allowed; it fails with
// CUDA_ERROR_OPERATING_SYSTEM without), tries to create /dev/char/MAJ:MIN
// symlinks (refused with EACCES, which it tolerates), opens the device
// nodes, reads /proc and /sys; a PTX JIT, launches, streams and events need
// nothing more.
std::vector<std::string> DefaultSandboxWritePaths();
// Read-only (and execute): /proc, /sys (device and NUMA facts the driver
// reads), the library directories (the driver dlopens helpers such as the
// PTX JIT compiler on first use), /etc/ld.so.cache, /usr/share/nvidia.
std::vector<std::string> DefaultSandboxReadPaths();

struct SandboxOptions {
  // --sandbox on|off. Off: EnterSandbox logs that once and changes nothing.
  bool enabled = true;
  // User (and its primary group) to run as when started as root. Empty: keep
  // root (logged as a warning). Ignored when not root.
  std::string user = "nobody";
  // What may still be opened, read-write and read-only (see above). Add the
  // directory of a driver loaded from outside the library directories.
  std::vector<std::string> allow_paths = DefaultSandboxWritePaths();
  std::vector<std::string> allow_read_paths = DefaultSandboxReadPaths();
  // unshare mount, IPC and network namespaces (step 2).
  bool namespaces = true;
  // Landlock path restriction (step 4).
  bool landlock = true;
  // The system-call allow-list (step 6).
  bool seccomp = true;
  // Diagnosis only: a forbidden system call fails with ENOSYS and is logged
  // ("sandbox: forbidden system call 41 (socket)") instead of killing the
  // worker. For finding what a new driver version needs; never in service.
  // (It works through SIGSYS: a thread that blocks every signal still dies.)
  bool seccomp_audit = false;
};

// What EnterSandbox applied (for the log line and for tests).
struct SandboxReport {
  bool enabled = false;
  bool no_new_privs = false;
  bool namespaces = false;      // mount + IPC + network
  bool user_namespace = false;  // needed CLONE_NEWUSER (not root)
  bool user_changed = false;
  unsigned uid = 0, gid = 0;    // after the change (or as before)
  int landlock_abi = 0;         // 0: not applied
  int landlock_rules = 0;
  bool seccomp = false;
  int seccomp_syscalls = 0;     // entries of the allow-list
  int threads_before = 0;       // threads running when it was entered
  // One line: "uid 65534 gid 65534; namespaces mnt,ipc,net; landlock ABI 6 (14 paths); ..."
  std::string Describe() const;
};

// Enters the sandbox described by `options`. See the header comment for the
// steps, what is skipped with a warning and what fails. On failure the
// process may be partly sandboxed; the caller must not serve a client.
Status EnterSandbox(const SandboxOptions& options, SandboxReport* report = nullptr);

}  // namespace rgpu::worker
