// The worker: one process per client session. It holds that session's CUDA
// context(s) and executes the client's calls on its backend. It is started
// by the supervisor (fork + exec) with the client's connected socket, after
// the handshake; nothing in the supervisor touches CUDA.
#pragma once

#include <cstdint>
#include <string>

#include "backend/driver_table.h"
#include "server/worker/sandbox.h"

namespace rgpu::worker {

struct WorkerOptions {
  int fd = -1;          // the client's connected socket (blocking)
  int control_fd = -1;  // warm mode: wait here for the client (see control.h)
  uint64_t session_id = 0;
  bool paranoid_wipe = false;
  SandboxOptions sandbox;  // entered after the driver is loaded, before cuInit
  backend::BackendOptions backend;
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
