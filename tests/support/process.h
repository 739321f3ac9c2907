// Test support: start rgpu-server on a free loopback port and run programs
// against it with bounded time. For end-to-end tests only.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace rgpu::testing {

// Paths baked in by CMake.
std::string BuildDir();
std::string ServerBinary();
std::string ClientLibDir();
// Every executable under BuildDir()/tests/e2e (the nvcc-built CUDA programs), sorted.
std::vector<std::string> E2EPrograms();

struct RunResult {
  int exit_code = -1;  // -1: killed by signal or timed out
  bool timed_out = false;
  std::string out;
  std::string err;
  double seconds = 0;
};

// Runs argv with extra environment entries, killing it after timeout_s.
RunResult RunProgram(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
              double timeout_s);

// A child process running in the background, its output going to files.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env);
  ~Child();  // kills it if still running
  pid_t pid() const { return pid_; }
  // Waits until its stdout contains `text`; false on timeout or exit.
  bool WaitForOutput(const std::string& text, double timeout_s);
  // Waits for exit (killing it after timeout_s) and collects the result.
  RunResult Wait(double timeout_s);

 private:
  pid_t pid_ = -1;
  std::string out_path_, err_path_;
  double start_ = 0;
};

class TestServer {
 public:
  // Starts `rgpu-server --listen 127.0.0.1:0 --backend sim` plus extra args
  // (which may name another --listen address);
  // waits until it prints its port. Aborts the test (ADD_FAILURE) on failure.
  explicit TestServer(std::vector<std::string> extra_args = {});
  ~TestServer();
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Environment for a client of this server.
  std::map<std::string, std::string> ClientEnv() const;
  // Worker processes (children of the server) alive now.
  std::vector<pid_t> Workers() const;
  bool alive() const;
  // `rgpu status --json` as the server answers it on its admin socket.
  std::string StatusJson() const;
  // Pids of the workers serving sessions now (from the status).
  std::vector<pid_t> SessionWorkers() const;
  // Everything the server wrote to stderr so far.
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_path_;
};

// Number of open fds of a process (from /proc).
int OpenFds(pid_t pid);

}  // namespace rgpu::testing
