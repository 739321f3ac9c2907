// The worker: one process per client session. It holds that session's CUDA
// context(s) and executes the client's calls on its backend. It is started
// by the supervisor (fork + exec) with the client's connected socket, after
// the handshake; nothing in the supervisor touches CUDA.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend/driver_table.h"
#include "server/worker/sandbox.h"
#include "server/worker/swap.h"

namespace rgpu::worker {

struct WorkerOptions {
  int fd = -1;          // the client's connected socket (blocking)
  int control_fd = -1;  // warm mode: wait here for the client (see control.h)
  uint64_t session_id = 0;
  bool paranoid_wipe = false;
  uint64_t max_mem = 0;                       // device bytes the session may hold; 0: no limit
  uint64_t max_pending_bytes = 512ull << 20;  // request bytes queued ahead of the executor
  // After the session ends, how long its teardown (the GPU's work draining,
  // the wipe) may take before the worker ends itself (teardown_guard.h).
  double teardown_grace_s = 20;
  // TLS (warm mode): the server's certificate and key, loaded before the
  // sandbox; the client then runs its second TLS session with this worker
  // (server/worker/tls_session.h).
  std::string tls_cert;
  std::string tls_key;
  SandboxOptions sandbox;  // entered after the driver is loaded, before cuInit
  DetachOptions detach;    // idle detach (warm mode only; swap.h)
  backend::BackendOptions backend;
  // The backend ordinal of this worker's own GPU: its warm context is made
  // there (the worker sees every pool GPU; see device_map.h).
  int device = 0;
  // The session's GPUs as backend ordinals, client order (warm mode: from
  // the supervisor's kAttach; empty means just `device`).
  std::vector<int> gpus;
};

// In warm mode (control_fd >= 0) the worker first loads the backend and
// creates its context, says it is ready on the control channel, and waits
// for the supervisor to hand it a client; then, as otherwise:
// Serves the session until the client disconnects or breaks the protocol.
// Frees everything the session held before returning. Returns the process
// exit code: 0 after a clean end, 1 when the backend could not start, 2 on a
// protocol violation.
int RunWorker(const WorkerOptions& options);

}  // namespace rgpu::worker
