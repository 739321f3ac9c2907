// GpuPool: the host's GPUs inside the supervisor (time-slicing).
//
// Each GPU is leased to at most one session at a time. For every GPU a warm
// worker is kept ready: a worker process bound to that GPU with its CUDA
// context already created, waiting on its control channel. A new session is
// handed to a warm worker of a free GPU at once; sessions that find no free
// GPU wait in FIFO order and are told their position. When a session's
// worker exits (the session ended; the worker wiped what it wrote), the GPU
// goes to the next waiting session. A worker serves one session and exits;
// the next warm worker for its GPU is started when the previous one takes a
// session, so hand-over never waits for context creation; with
// --warm-spawn-delay it is started that much later (or as soon as the lease
// ends or another session waits), so that its context creation, which holds
// the driver's locks, does not slow the new session's first queries.
//
// Multi-GPU sessions (RGPU_GPUS=N): a session may lease N GPUs at once. It
// is served by one worker, the warm worker of the first of its GPUs; every
// worker sees all the pool's GPUs (CUDA_VISIBLE_DEVICES lists the pool) and
// is told which ones the session leased (server/worker/device_map.h), so the
// first GPU's context is warm and the others' are made on first use. All N
// are leased and released together, each wiped by that worker.
//
// Queue policy (strict FIFO with reservation): the head of the queue is
// served as soon as as many GPUs as it asks for are free; nobody behind it
// overtakes it, so GPUs that free up stay free for it. A multi-GPU request is
// therefore never starved (every running session ends, or is detached while
// others wait), and sessions behind it wait at most until it starts. The
// price is GPUs left idle while the head gathers its set. A helper process
// of a lease holder (family) shares the holder's GPUs and skips the queue.
// A request for more GPUs than the pool can serve is refused at once
// (CheckRequest), and so is a queued one when GPUs leave the pool.
//
// Single-threaded: driven by the supervisor's poll loop.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/tls.h"
#include "proto/compression.h"
#include "server/supervisor/control.h"
#include "proto/handshake.h"

namespace rgpu::server {

struct SupervisorOptions;

class GpuPool {
 public:
  using Clock = std::chrono::steady_clock;

  GpuPool(const SupervisorOptions& options, std::vector<int> gpus);
  ~GpuPool();

  // Starts one warm worker per GPU.
  void Start();
  // Hello's gpus_wanted value for "every GPU of the pool" (RGPU_GPUS=all).
  static constexpr uint32_t kAllGpus = proto::kAllGpus;
  // Whether a request for `wanted` GPUs can ever be served here: the number
  // of GPUs it means (kAllGpus: the whole pool), or the reason it cannot.
  Result<int> CheckRequest(uint32_t wanted) const;
  // A client passed the handshake: lease `gpus` GPUs now or queue it (the
  // count from CheckRequest). Takes `fd`.
  // A TLS client comes with the supervisor's TLS session (`tls`): queue
  // events go through it, and it is ended with the hand-over secret when a
  // worker takes the client (proto/handshake.h).
  void Admit(int fd, uint64_t session_id, const std::string& identity, const std::string& peer,
             int gpus = 1, std::unique_ptr<tls::Stream> tls = nullptr,
             proto::Codec codec = proto::Codec::kNone);
  // Descriptors to poll (warm workers' control channels, queued clients).
  void AddPollFds(std::vector<pollfd>* fds) const;
  // Handles readiness on those descriptors (ignores others).
  void OnPoll(const std::vector<pollfd>& fds);
  // A child exited. Returns true if it was one of the pool's workers.
  bool OnChildExit(pid_t pid, int status);
  // Ends every worker (supervisor shutdown).
  void StopAll();
  // Starts the deferred warm workers (--warm-spawn-delay) that are due, or
  // all of them while a session waits. Called on every turn of the loop.
  void SpawnDueWarm();

  std::string StatusJson() const;
  size_t sessions() const;
  size_t queued() const { return queue_.size(); }

 private:
  // A session on a GPU: the lease holder, or a helper process of it (a
  // client whose parent or grandparent holds the GPU shares its lease).
  struct Holder {
    pid_t worker_pid = -1;
    int ctl = -1;  // the worker's control channel (kReleased ends the lease early)
    uint64_t session_id = 0;
    std::string identity;
    std::string host;  // from the identity: where the client runs
    long client_pid = 0;
    Clock::time_point since;
    // Positions in gpus_ of every GPU the session holds, in the client's
    // order; the worker and `ctl` belong to the first.
    std::vector<int> gpus;
    // Idle detach (gpu_pool_detach.cc), on the record that has `ctl`.
    uint64_t bytes_held = 0;     // device memory, as the worker last said
    uint64_t bytes_swapped = 0;  // saved in host memory while detached
    uint64_t told_waiting = 0;   // the waiting count the worker last heard
    Clock::time_point detached_since;
    bool reattach_queued = false;
    bool can_move = false;  // its kReattach said it may come back on another GPU of its type
  };
  struct Gpu {
    int index = 0;  // host-wide GPU index
    std::vector<Holder> holders;  // empty: free
    pid_t warm_pid = -1;
    int warm_ctl = -1;
    bool warm_ready = false;
    int fast_failures = 0;  // warm workers that died before becoming ready
    Clock::time_point warm_started;
    Clock::time_point retry_at;
    // The next warm worker is due (SpawnDueWarm); unset: none deferred.
    std::optional<Clock::time_point> spawn_at;
    bool out = false;  // taken out of the pool (warm workers keep failing)
    // A session of this GPU ended without its wipe (its worker died or was
    // ended): its warm worker scrubs the card (control.h kScrub) before the
    // GPU is free again. scrubbing: the warm worker is at it now.
    bool needs_scrub = false;
    bool scrubbing = false;
    // Reported by its warm worker (kReady): the supervisor loads no CUDA.
    std::string name;
    uint64_t total_mem = 0;
    Clock::time_point free_since;  // when its last lease ended (or the pool started)
  };
  struct Waiting {
    int fd = -1;
    uint64_t session_id = 0;
    std::string identity;
    std::string peer;
    Clock::time_point since;
    int family_gpu = -1;  // position in gpus_ of the lease it shares, or -1
    int gpus_wanted = 1;
    // A detached session asking for its GPUs back (fd is -1 then): the pid
    // of its worker, which is in detached_.
    pid_t reattach_pid = -1;
    std::shared_ptr<tls::Stream> tls;  // the client's TLS session with us, or null
    proto::Codec codec = proto::Codec::kNone;  // agreed wire compression, told to the worker
  };
  // Sends a small frame to a queued client without blocking (inside its
  // TLS session if it has one). False when it could not take it all.
  static bool SendToWaiting(Waiting& w, const std::vector<uint8_t>& frame);
  // TLS: ends the client's session with us, handing it `secret` (new, for
  // the worker) and close_notify. Non-OK when the client cannot take it.
  static Status HandOver(Waiting& w, std::string* secret);

  void SpawnWarm(Gpu& g);
  // Hands `w` to the warm worker of gpus_[positions[0]], leasing all of
  // `positions` (client order).
  void Attach(const std::vector<int>& positions, Waiting w);
  // Ends the lease of the session served by `worker_pid` on every GPU it
  // holds. Returns false if it held none.
  // `clean`: the worker said kReleased (the session's memory is wiped).
  bool EndLease(pid_t worker_pid, const char* how, bool clean);
  // Has the warm worker scrub the GPU if it needs it and nobody holds it.
  void MaybeScrub(Gpu& g);
  // GPUs that can serve sessions (not taken out of the pool).
  int Usable() const;
  // Up to `n` free GPUs with a ready warm worker (positions, pool order).
  std::vector<int> FreeGpus(int n) const;
  std::string PoolList() const;  // host indices of the pool, comma separated
  // The GPU (position in gpus_) leased to an ancestor of the client named by
  // `identity`, or -1.
  int FamilyGpu(const std::string& identity) const;
  void Dispatch();
  void TellPositions();
  // Idle detach (gpu_pool_detach.cc; docs/time-slicing.md). A message other
  // than kReleased from an attached session's worker; true if leases changed.
  bool OnHolderMessage(pid_t worker_pid, const ControlMessage& m);
  // Readiness on a detached session's control channel; true if handled.
  bool OnDetachedPoll(const pollfd& p, bool* changed);
  // A detached session's worker that exits right after a control message
  // (kReleased: its client ended while detached) can be reaped before the
  // message is read: reads what it sent first, so the session ends for the
  // reason the worker gave. True when that ended the session's record.
  bool DrainDetachedControl(pid_t worker_pid);
  // The reattach entry `w` at the head of the queue: gives the session its
  // own GPU if free, else (when it can move) any free GPU of the same type.
  // False: it must wait (FIFO, nobody overtakes).
  bool TryReattach(const Waiting& w);
  // A free GPU (position) of the same type as gpus_[like] (same name and
  // memory, as its warm worker reported them), or -1.
  int FreeGpuLike(int like) const;
  // Forgets a detached session whose worker exited; true if it was one.
  bool ForgetDetached(pid_t worker_pid, const char* how);
  // Tells attached sessions how many wait (they detach when idle if any).
  void TellWaiting();
  void Refuse(Waiting& w, const std::string& why);

  const SupervisorOptions& options_;
  std::vector<Gpu> gpus_;
  std::deque<Waiting> queue_;
  std::vector<Holder> detached_;  // detached sessions (their workers keep the clients)
  uint64_t sessions_served_ = 0;
};

}  // namespace rgpu::server
