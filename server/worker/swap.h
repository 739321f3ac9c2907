// IdleDetacher: the worker's half of idle detach and reattach
// (docs/time-slicing.md).
//
// The detached state lives in the session's own worker process: it keeps
// the client connection, its CUDA context (so streams, events, modules and
// functions stay valid and need no reloading) and the address reservations
// of its memory (DeviceHeap). Detach saves the memory to pinned host memory,
// wipes and frees it on the card, and tells the supervisor (kDetached), which
// leases the GPU to the next session. The next request from the client
// reattaches: the worker asks for a GPU again (kReattach, saying whether the
// session can move to another GPU: SessionMover::Blocker; the supervisor
// queues it FIFO with the others), waits for kResume, which names the GPU it
// got. On its own GPU it maps memory back at the same addresses and copies
// the contents in; on another GPU of the same type SessionMover moves the
// whole session there first (session_move.h). Then it serves the request.
// The client does not notice, beyond the time the call takes.
//
// The pinned host store is made in the background once the session has been
// idle for half the timeout (when it would qualify for detach), so the
// detach itself does not wait for the pinning (swap_store.h).
//
// When: the session sent nothing for `idle_timeout`, every stream is idle,
// and either someone waits for a GPU (mode "waiting", told by the supervisor
// with kWaiting) or mode is "always". Sessions holding what cannot be moved
// stay attached (said once in the log): graphs, memory from the client's own
// virtual memory calls, cuMemAllocPitch memory. Module globals stay in the
// kept context and count as memory held.
//
// Single-threaded: the worker's executor thread only. Errors: a failed
// detach leaves the session attached and working (logged); a failed
// reattach ends the session (the returned Status says why).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/coarse_clock.h"
#include "common/status.h"
#include "server/worker/session_move.h"

namespace rgpu::worker {

class DeviceHeap;
class Session;

enum class DetachMode { kNever, kWaiting, kAlways };

// Parses "never" | "waiting" | "always".
Result<DetachMode> ParseDetachMode(const std::string& s);

struct DetachOptions {
  DetachMode mode = DetachMode::kWaiting;
  double idle_timeout_s = 2.0;
  bool paranoid_wipe = false;
  // The backend ordinal whose primary context the worker retained when it
  // started (it moves with the session, session_move.h); -1: none.
  int warm_device = -1;
};

class IdleDetacher {
 public:
  using Clock = std::chrono::steady_clock;
  // `control_fd`: the worker's channel to the supervisor (not owned).
  IdleDetacher(Session& session, DeviceHeap& heap, int control_fd, DetachOptions options);

  // How long the worker may wait for a request before calling Tick.
  std::chrono::milliseconds TickInterval() const;
  // No request came: reads the supervisor's messages, reports usage, and
  // detaches when the session qualifies. Non-OK: the supervisor is gone.
  Status Tick();
  // A request is about to be served: reattaches first when detached
  // (blocks until the supervisor gives the GPU back). Non-OK: the session
  // cannot go on.
  Status BeforeRequest();
  // The request was served (activity ends now: a long synchronous call
  // does not count as idle time).
  void AfterRequest();
  bool detached() const { return detached_; }
  // Asked while waiting for the GPU back: true when the client has gone, so
  // the session ends instead of holding its place in the queue.
  void set_client_gone(std::function<bool()> f) { client_gone_ = std::move(f); }

 private:
  // Why the session cannot detach now ("" if it can).
  std::string Blocker() const;
  bool StreamsIdle() const;
  void Detach();
  Status ReadControl(bool block);
  void ReportUsage(bool force, CoarseClock::time_point now = CoarseClock::now());

  Session& session_;
  DeviceHeap& heap_;
  const int control_fd_;
  const DetachOptions options_;
  // Taken on every request: the coarse clock (a second-scale timeout needs
  // no finer one).
  CoarseClock::time_point last_activity_ = CoarseClock::now();
  CoarseClock::time_point last_report_{};
  uint64_t last_reported_ = UINT64_MAX;
  uint64_t waiting_ = 0;  // sessions waiting for a GPU, as the supervisor last said
  bool detached_ = false;
  bool resumed_ = false;  // kResume arrived
  std::vector<int> resume_gpus_;  // the GPUs kResume named (backend ordinals)
  SessionMover mover_;
  std::string last_move_blocker_;
  std::string last_blocker_;
  std::function<bool()> client_gone_;
};

}  // namespace rgpu::worker
