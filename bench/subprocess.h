// Child processes for rgpu bench: the measuring children and the server it
// starts for --sim (or when no --server is given).
//
// Output goes to temporary files (not pipes), so a child that writes a lot can
// never block on a full pipe while the parent waits. Every function here kills
// what it started when it gives up; none leaves a process behind on return
// except a started Server, which its destructor stops.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace rgpu::bench {

struct ChildResult {
  int exit_code = -1;  // -1: killed by a signal or by the timeout
  bool timed_out = false;
  std::string out;  // everything it wrote to stdout
  std::string err;  // and to stderr
};

// Runs argv (argv[0] a path) with `env` added to this process's environment
// and waits at most timeout_s, then kills its process group. Fails only when
// it cannot be started.
Result<ChildResult> RunChild(const std::vector<std::string>& argv,
                             const std::map<std::string, std::string>& env, double timeout_s);

// An rgpu-server started on 127.0.0.1 with a port the server picks.
class Server {
 public:
  // Starts `argv` (which must include "--listen 127.0.0.1:0") and waits up to
  // timeout_s for it to log "(port N)". Fails with the server's log when it
  // exits or stays silent; nothing is left running then.
  static Result<std::unique_ptr<Server>> Start(const std::vector<std::string>& argv, double timeout_s);
  ~Server();  // SIGTERM, then SIGKILL after 5 s
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string Log() const;  // what it has written to stderr so far

 private:
  Server() = default;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_path_;
};

// The absolute path of the running executable (/proc/self/exe).
std::string SelfExe();

}  // namespace rgpu::bench
