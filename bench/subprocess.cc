#include "bench/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

namespace rgpu::bench {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A temporary file, removed when this goes out of scope.
struct TempFile {
  explicit TempFile(const char* prefix) {
    std::string tmpl = std::string("/tmp/") + prefix + "_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    fd = mkstemp(buf.data());
    if (fd >= 0) path = buf.data();
  }
  ~TempFile() {
    if (fd >= 0) close(fd);
    if (!path.empty()) unlink(path.c_str());
  }
  int fd = -1;
  std::string path;
};

// fork + exec with stdout/stderr redirected, in a process group of its own.
// The child gets `death_signal` when this process dies, so that an
// interrupted bench leaves nothing running.
Result<pid_t> Spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                    int out_fd, int err_fd, int death_signal) {
  if (argv.empty()) return Status::Invalid("spawn: empty command");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return Status::Errno(Code::kInternal, "fork " + argv[0], errno);
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, death_signal);
    if (getppid() == 1) _exit(127);  // the parent is already gone
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    execv(args[0], args.data());
    fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid);  // also from the parent, so that kill(-pid) works at once
  return pid;
}

void KillGroup(pid_t pid) {
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
}

}  // namespace

std::string SelfExe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, n) : std::string();
}

Result<ChildResult> RunChild(const std::vector<std::string>& argv,
                             const std::map<std::string, std::string>& env, double timeout_s) {
  TempFile out("rgpu_bench_out"), err("rgpu_bench_err");
  if (out.fd < 0 || err.fd < 0) return Status::Errno(Code::kInternal, "mkstemp", errno);
  Result<pid_t> pid = Spawn(argv, env, out.fd, err.fd, SIGKILL);
  if (!pid.ok()) return pid.take_status();
  ChildResult r;
  int status = 0;
  double start = Now();
  for (;;) {
    pid_t w = waitpid(*pid, &status, WNOHANG);
    if (w == *pid) break;
    if (w < 0 && errno != EINTR) break;
    if (Now() - start > timeout_s) {
      r.timed_out = true;
      KillGroup(*pid);
      waitpid(*pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // Whatever the child left in its group (e.g. a stray grandchild) goes too.
  kill(-*pid, SIGKILL);
  r.exit_code = (!r.timed_out && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  r.out = Slurp(out.path);
  r.err = Slurp(err.path);
  return r;
}

Result<std::unique_ptr<Server>> Server::Start(const std::vector<std::string>& argv, double timeout_s) {
  char tmpl[] = "/tmp/rgpu_bench_server_XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) return Status::Errno(Code::kInternal, "mkstemp", errno);
  std::unique_ptr<Server> s(new Server);
  s->log_path_ = tmpl;
  int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  Result<pid_t> pid = Spawn(argv, {}, devnull, fd, SIGTERM);
  close(fd);
  if (devnull >= 0) close(devnull);
  if (!pid.ok()) return pid.take_status();
  s->pid_ = *pid;
  double start = Now();
  while (Now() - start < timeout_s) {
    std::string log = s->Log();
    size_t at = log.find("(port ");
    if (at != std::string::npos && atoi(log.c_str() + at + 6) > 0) {
      s->port_ = atoi(log.c_str() + at + 6);
      return s;
    }
    int status = 0;
    if (waitpid(s->pid_, &status, WNOHANG) == s->pid_) {
      s->pid_ = -1;
      return Status::Internal(argv[0] + " exited before listening:\n" + s->Log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return Status::Internal(argv[0] + " did not report its port within " +
                          std::to_string(static_cast<int>(timeout_s)) + " s:\n" + s->Log());
}

Server::~Server() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    bool gone = false;
    for (int i = 0; i < 500 && !gone; ++i) {
      gone = waitpid(pid_, &status, WNOHANG) == pid_;
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!gone) {
      KillGroup(pid_);
      waitpid(pid_, &status, 0);
    }
    kill(-pid_, SIGKILL);  // workers left in its process group
  }
  if (!log_path_.empty()) unlink(log_path_.c_str());
}

std::string Server::Log() const { return log_path_.empty() ? std::string() : Slurp(log_path_); }

}  // namespace rgpu::bench
