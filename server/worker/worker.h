// The worker: one process per client session. It holds that session's CUDA
// context(s) and executes the client's calls on its backend. It is started
// by the supervisor (fork + exec) with the client's connected socket, after
// the handshake; nothing in the supervisor touches CUDA.
#pragma once

#include <cstdint>
#include <string>

#include "backend/driver_table.h"

namespace rgpu::worker {

struct WorkerOptions {
  int fd = -1;  // the client's connected socket (blocking)
  uint64_t session_id = 0;
  backend::BackendOptions backend;
};

// Serves the session until the client disconnects or breaks the protocol.
// Frees everything the session held before returning. Returns the process
// exit code: 0 after a clean end, 1 when the backend could not start, 2 on a
// protocol violation.
int RunWorker(const WorkerOptions& options);

}  // namespace rgpu::worker
