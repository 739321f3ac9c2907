#include "server/server_main.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/log.h"
#include "server/supervisor/supervisor.h"
#include "server/worker/worker.h"
#include "backend/driver_table.h"

namespace rgpu::server {
namespace {

Result<std::string> ReadToken(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::Invalid("token file " + path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  if (t.size() < 16) return Status::Invalid("token file " + path + ": token shorter than 16 bytes");
  if (t.size() > 4096) return Status::Invalid("token file " + path + ": token longer than 4096 bytes");
  return t;
}

// The profile shipped next to the binary (build tree or install), if any.
std::string DefaultProfile() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  std::string exe(buf, n);
  std::string dir = exe.substr(0, exe.rfind('/'));
  for (const char* rel : {"/../share/rgpu/h200-device-profile.json",
                          "/../../data/driver/h200-device-profile.json"}) {
    std::string p = dir + rel;
    if (access(p.c_str(), R_OK) == 0) return p;
  }
  return "";
}

// Prints the number of GPUs the backend sees (run as a separate process by
// the supervisor, which itself never loads CUDA).
int ProbeGpus(const SupervisorOptions& opt) {
  backend::BackendOptions b;
  b.kind = opt.backend;
  b.driver_path = opt.driver_path;
  b.profile_path = opt.profile_path;
  b.sim_gpus = opt.sim_gpus;
  backend::DriverTable d;
  Status st = backend::LoadBackend(b, &d);
  int n = 0;
  if (!st.ok() || d.cuInit(0) != CUDA_SUCCESS || d.cuDeviceGetCount(&n) != CUDA_SUCCESS) {
    fprintf(stderr, "rgpu-server: GPU probe failed: %s\n", st.ok() ? "cuInit/cuDeviceGetCount" : st.message().c_str());
    return 1;
  }
  printf("%d\n", n);
  return 0;
}

}  // namespace

int ServerMain(int argc, char** argv) {
  CLI::App app{"rgpu-server: serves CUDA sessions to rgpu clients over TCP"};
  SupervisorOptions opt;
  std::string token_file;
  int worker_fd = -1;
  int control_fd = -1;
  std::vector<int> sim_indices;
  int worker_device = 0;
  bool probe_gpus = false;
  uint64_t session_id = 0;
  app.add_option("--listen", opt.listen, "HOST:PORT to listen on")->capture_default_str();
  app.add_option("--backend", opt.backend, "cuda (real GPU) or sim (host memory, tests)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cuda", "sim"}));
  app.add_option("--driver", opt.driver_path, "cuda backend: path of the real libcuda.so.1");
  app.add_option("--profile", opt.profile_path, "sim backend: device profile JSON");
  app.add_option("--sim-gpus", opt.sim_gpus, "sim backend: number of simulated GPUs")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--token-file", token_file, "file holding the clients' shared token");
  app.add_option("--max-sessions", opt.max_sessions, "concurrent sessions")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--handshake-timeout-ms", opt.handshake_timeout_ms,
                 "close connections that do not finish the handshake in time")
      ->capture_default_str()
      ->check(CLI::Range(10, 600000));
  app.add_option("--auth-fail-limit", opt.auth_fail_limit,
                 "failed handshakes per address within --auth-fail-window-ms before its connections are "
                 "refused until the window ends (0: no limit)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  app.add_option("--auth-fail-window-ms", opt.auth_fail_window_ms,
                 "window over which failed handshakes are counted per address")
      ->capture_default_str()
      ->check(CLI::Range(10, 86400000));
  app.add_option("--max-mem", opt.max_mem,
                 "device memory a session may hold, e.g. 8G (0: no limit); beyond it allocations fail "
                 "with CUDA_ERROR_OUT_OF_MEMORY")
      ->capture_default_str()
      ->transform(CLI::AsSizeValue(false));
  app.add_option("--max-pending-bytes", opt.max_pending_bytes,
                 "request bytes a session may have queued ahead of execution, e.g. 512M; beyond it the "
                 "worker stops reading and TCP pushes back on the client")
      ->capture_default_str()
      ->transform(CLI::AsSizeValue(false));
  app.add_option("--gpus", opt.gpus, "GPUs to serve: all, or host indices like 0,1")->capture_default_str();
  app.add_flag("--paranoid-wipe", opt.paranoid_wipe,
               "after a session, read back every wiped byte (default: sampled pages)");
  app.add_option("--teardown-grace", opt.teardown_grace_s,
                 "seconds a session's GPU work may go on after its client left (a stream waiting for ever, "
                 "a kernel that never ends) before its worker is ended and the card scrubbed for the next "
                 "session")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
  app.add_option("--warm-spawn-delay", opt.warm_spawn_delay_s,
                 "seconds after a GPU is leased before the next session's warm worker (its CUDA context) is "
                 "started; sooner when the lease ends or another session waits")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--idle-timeout", opt.idle_timeout_s,
                 "seconds a session may send nothing (its streams idle) before it may be detached")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 86400.0));
  app.add_option("--detach-idle", opt.detach_idle,
                 "detach idle sessions (memory saved to host, GPU wiped and passed on): waiting (only "
                 "while another session waits), always, or never")
      ->capture_default_str()
      ->check(CLI::IsMember({"waiting", "always", "never"}));
  app.add_option("--admin-socket", opt.admin_socket,
                 "Unix socket answering `rgpu status` (default /tmp/rgpu-server-PORT.sock)");
  app.add_option("--sandbox", opt.sandbox,
                 "confine workers (seccomp allow-list, namespaces, Landlock, unprivileged user): on, off, "
                 "or audit (log forbidden system calls instead of killing; diagnosis only)")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off", "audit"}));
  app.add_option("--tls-cert", opt.tls_cert,
                 "TLS 1.3: PEM certificate chain of this server (with --tls-key; every client must then "
                 "use TLS: RGPU_TLS=1)");
  app.add_option("--tls-key", opt.tls_key, "TLS 1.3: PEM private key of --tls-cert");
  std::string compress = "on";
  app.add_option("--compress", compress,
                 "compress bulk copies (lz4/zstd, in 1 MiB blocks, only blocks that shrink) for clients "
                 "that ask (RGPU_COMPRESS; by default clients ask off loopback only): on or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}));
  app.add_option("--sandbox-user", opt.sandbox_user, "user workers run as when the server runs as root")
      ->capture_default_str();
  // Internal: how the supervisor starts worker processes.
  app.add_option("--worker-fd", worker_fd)->group("");
  app.add_option("--control-fd", control_fd)->group("");
  app.add_option("--session-id", session_id)->group("");
  app.add_option("--sim-indices", sim_indices)->delimiter(',')->group("");
  app.add_option("--device", worker_device)->group("");
  app.add_flag("--probe-gpus", probe_gpus)->group("");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (opt.backend == "sim" && opt.profile_path.empty()) opt.profile_path = DefaultProfile();
  opt.compress = compress == "on";

  if (probe_gpus) return ProbeGpus(opt);
  if (worker_fd >= 0 || control_fd >= 0) {
    worker::WorkerOptions w;
    w.fd = worker_fd;
    w.control_fd = control_fd;
    w.session_id = session_id;
    w.paranoid_wipe = opt.paranoid_wipe;
    w.teardown_grace_s = opt.teardown_grace_s;
    w.tls_cert = opt.tls_cert;
    w.tls_key = opt.tls_key;
    w.max_mem = opt.max_mem;
    w.max_pending_bytes = opt.max_pending_bytes;
    w.detach.mode = *worker::ParseDetachMode(opt.detach_idle);  // checked by CLI11 above
    w.detach.idle_timeout_s = opt.idle_timeout_s;
    w.detach.paranoid_wipe = opt.paranoid_wipe;
    w.sandbox.enabled = opt.sandbox != "off";
    w.sandbox.seccomp_audit = opt.sandbox == "audit";
    w.sandbox.user = opt.sandbox_user;
    w.backend.kind = opt.backend;
    w.backend.driver_path = opt.driver_path;
    w.backend.profile_path = opt.profile_path;
    w.backend.sim_gpus = opt.sim_gpus;
    w.backend.sim_indices = sim_indices;
    w.device = worker_device;
    return worker::RunWorker(w);
  }

  SetLogTag("rgpu-server");
  if (!token_file.empty()) {
    Result<std::string> t = ReadToken(token_file);
    if (!t.ok()) {
      fprintf(stderr, "rgpu-server: %s\n", t.status().message().c_str());
      return 2;
    }
    opt.token = *t;
  }
  Supervisor sup(opt);
  if (Status st = sup.Start(); !st.ok()) {
    fprintf(stderr, "rgpu-server: %s\n", st.message().c_str());
    return 2;
  }
  fprintf(stderr, "rgpu-server: listening on %s (port %u), backend %s\n", opt.listen.c_str(),
          sup.port(), opt.backend.c_str());
  return sup.Run();
}

}  // namespace rgpu::server
