#include "tests/support/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

namespace rgpu::testing {

std::string BuildDir() { return RGPU_BUILD_DIR; }
std::string ServerBinary() { return BuildDir() + "/bin/rgpu-server"; }
std::string ClientLibDir() { return BuildDir() + "/lib"; }

std::vector<std::string> E2EPrograms() {
  std::vector<std::string> out;
  std::string dir = BuildDir() + "/tests/e2e";
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string path = dir + "/" + e->d_name;
    struct stat st {};
    if (e->d_name[0] == '.' || stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR))
      continue;
    out.push_back(path);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

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
}  // namespace

RunResult RunProgram(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                     double timeout_s) {
  Child child(argv, env);
  return child.Wait(timeout_s);
}

Child::Child(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  char out_tmpl[] = "/tmp/rgpu_cout_XXXXXX";
  char err_tmpl[] = "/tmp/rgpu_cerr_XXXXXX";
  int out_fd = mkstemp(out_tmpl), err_fd = mkstemp(err_tmpl);
  out_path_ = out_tmpl;
  err_path_ = err_tmpl;
  start_ = Now();
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    setpgid(0, 0);
    // Sanitizer pass (make test-asan): programs not built with ASan (nvcc
    // programs, cudart) load rgpu's instrumented client library, which needs
    // the ASan runtime loaded first; leaks are not theirs to report.
    if (const char* preload = getenv("RGPU_ASAN_PRELOAD"); preload != nullptr && *preload != 0) {
      setenv("LD_PRELOAD", preload, 1);
      std::string asan = getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "";
      setenv("ASAN_OPTIONS", (asan + ":detect_leaks=0").c_str(), 1);
    }
    for (auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(out_fd);
  close(err_fd);
}

Child::~Child() {
  if (pid_ > 0) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  unlink(out_path_.c_str());
  unlink(err_path_.c_str());
}

bool Child::WaitForOutput(const std::string& text, double timeout_s) {
  double start = Now();
  while (Now() - start < timeout_s) {
    if (Slurp(out_path_).find(text) != std::string::npos) return true;
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return Slurp(out_path_).find(text) != std::string::npos;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

RunResult Child::Wait(double timeout_s) {
  RunResult r;
  int status = 0;
  double start = Now();
  bool exited = pid_ < 0;
  while (!exited) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exited = true;
      break;
    }
    if (Now() - start > timeout_s) {
      r.timed_out = true;
      kill(-pid_, SIGKILL);
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (pid_ > 0) r.exit_code = (!r.timed_out && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  pid_ = -1;
  r.seconds = Now() - start;
  r.out = Slurp(out_path_);
  r.err = Slurp(err_path_);
  return r;
}

TestServer::TestServer(std::vector<std::string> extra_args) {
  char tmpl[] = "/tmp/rgpu_server_XXXXXX";
  int fd = mkstemp(tmpl);
  log_path_ = tmpl;
  std::vector<std::string> argv = {ServerBinary(), "--backend", "sim"};
  bool listen_given = false;
  for (const std::string& a : extra_args) listen_given |= a == "--listen";
  if (!listen_given) argv.insert(argv.end(), {"--listen", "127.0.0.1:0"});
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  pid_ = fork();
  if (pid_ == 0) {
    dup2(fd, 2);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    setenv("RGPU_LOG", "info", 0);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fd);
  double start = Now();
  while (Now() - start < 10) {
    std::string log = Log();
    size_t at = log.find("(port ");
    if (at != std::string::npos) {
      port_ = atoi(log.c_str() + at + 6);
      if (port_ > 0) return;
    }
    if (!alive()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ADD_FAILURE() << "rgpu-server did not start:\n" << Log();
}

TestServer::~TestServer() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 500; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
  }
  // Under ASan/UBSan (make test's sanitizer pass) the supervisor's and the
  // workers' findings land in this log: any of them fails the test.
  std::string log = Log();
  size_t at = log.find("ERROR: AddressSanitizer");
  if (at == std::string::npos) at = log.find("ERROR: LeakSanitizer");
  if (at == std::string::npos) at = log.find("runtime error:");
  if (at != std::string::npos)
    ADD_FAILURE() << "sanitizer report in the server's log:\n" << log.substr(at >= 2000 ? at - 2000 : 0, 8000);
  unlink(log_path_.c_str());
}

std::map<std::string, std::string> TestServer::ClientEnv() const {
  std::string ld = ClientLibDir();
  if (const char* old = getenv("LD_LIBRARY_PATH")) ld += std::string(":") + old;
  return {{"RGPU_SERVER", address()}, {"LD_LIBRARY_PATH", ld}};
}

std::vector<pid_t> TestServer::Workers() const {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    pid_t p = atoi(e->d_name);
    if (p <= 0) continue;
    std::string stat = Slurp("/proc/" + std::to_string(p) + "/stat");
    size_t close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) continue;
    int ppid = 0;
    char state = 0;
    if (sscanf(stat.c_str() + close_paren + 2, "%c %d", &state, &ppid) == 2 && ppid == pid_ &&
        state != 'Z')
      out.push_back(p);
  }
  closedir(d);
  return out;
}

std::string TestServer::StatusJson() const {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = "/tmp/rgpu-server-" + std::to_string(port_) + ".sock";
  strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, n);
  }
  close(fd);
  return out;
}

std::vector<pid_t> TestServer::SessionWorkers() const {
  std::vector<pid_t> out;
  std::string js = StatusJson();
  for (size_t at = js.find("\"worker_pid\":"); at != std::string::npos; at = js.find("\"worker_pid\":", at + 1))
    out.push_back(atoi(js.c_str() + at + 13));
  return out;
}

bool TestServer::alive() const { return pid_ > 0 && kill(pid_, 0) == 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

std::string TestServer::Log() const { return Slurp(log_path_); }

int OpenFds(pid_t pid) {
  int n = 0;
  DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
  if (!d) return -1;
  while (readdir(d)) ++n;
  closedir(d);
  return n - 2;
}

}  // namespace rgpu::testing
