#include "server/worker/swap.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "common/log.h"
#include "server/supervisor/control.h"
#include "server/worker/device_heap.h"
#include "server/worker/session.h"

namespace rgpu::worker {
namespace {
double Ms(IdleDetacher::Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
double GBps(uint64_t bytes, IdleDetacher::Clock::duration d) {
  double s = std::chrono::duration<double>(d).count();
  return s > 0 ? bytes / s / 1e9 : 0;
}
}  // namespace

Result<DetachMode> ParseDetachMode(const std::string& s) {
  if (s == "never") return DetachMode::kNever;
  if (s == "waiting") return DetachMode::kWaiting;
  if (s == "always") return DetachMode::kAlways;
  return Status::Invalid("--detach-idle: '" + s + "' is not never, waiting or always");
}

IdleDetacher::IdleDetacher(Session& session, DeviceHeap& heap, int control_fd, DetachOptions options)
    : session_(session), heap_(heap), control_fd_(control_fd), options_(options),
      mover_(session, heap, options.warm_device) {}

std::chrono::milliseconds IdleDetacher::TickInterval() const {
  // A quarter of the timeout, between 10 ms and 100 ms: detach comes at most
  // a quarter late, and an idle worker wakes rarely.
  auto ms = static_cast<int64_t>(options_.idle_timeout_s * 1000 / 4);
  return std::chrono::milliseconds(std::clamp<int64_t>(ms, 10, 100));
}

Status IdleDetacher::ReadControl(bool block) {
  for (;;) {
    pollfd p{control_fd_, POLLIN, 0};
    int n = poll(&p, 1, block ? 100 : 0);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 && block) {
      if (client_gone_ && client_gone_()) return Status::Transport("the client left while waiting for its GPU");
      continue;
    }
    if (n <= 0) return {};
    server::ControlMessage m;
    RGPU_RETURN_IF_ERROR(server::ReceiveControl(control_fd_, &m));
    if (m.fd >= 0) close(m.fd);  // nothing the supervisor sends now carries one
    if (m.kind == server::ControlKind::kWaiting) waiting_ = m.value;
    else if (m.kind == server::ControlKind::kResume) {
      resumed_ = true;
      resume_gpus_ = m.gpus;
    }
    else RGPU_LOG_WARN("session %llu: unexpected control message %d", (unsigned long long)session_.id(), (int)m.kind);
    if (block && resumed_) return {};
  }
}

void IdleDetacher::ReportUsage(bool force, CoarseClock::time_point now) {
  if (!force && now - last_report_ < std::chrono::seconds(1)) return;
  // Memory held on the card: everything, less what is swapped out (module
  // globals stay in the kept context).
  uint64_t held = session_.bytes_allocated();
  if (heap_.swapped_out())
    for (auto& [ptr, size] : session_.allocations())
      if (heap_.Owns(ptr)) held -= size;
  // Once a second at most: drain what the supervisor said, so its notices
  // never fill the channel while the session is busy.
  if (!ReadControl(false).ok()) return;  // the supervisor is gone: Tick says so
  last_report_ = now;
  if (!force && held == last_reported_) return;
  last_reported_ = held;
  (void)server::SendControl(control_fd_, {server::ControlKind::kUsage, session_.id(), "", -1, held});
}

std::string IdleDetacher::Blocker() const {
  if (session_.HasGraphs()) return "it holds CUDA graphs";
  if (session_.HasOwnVirtualMemory()) return "it holds memory from its own virtual memory calls";
  if (!session_.arrays().empty()) return "it holds CUDA arrays or texture/surface objects";
  for (auto& [ptr, size] : session_.allocations())
    if (session_.IsDriverAllocation(ptr)) return "it holds cuMemAllocPitch memory";
  return "";
}

bool IdleDetacher::StreamsIdle() const {
  const backend::DriverTable& d = session_.driver();
  if (d.cuStreamQuery == nullptr || d.cuCtxGetCurrent == nullptr) return false;
  CUcontext current = nullptr;
  d.cuCtxGetCurrent(&current);
  bool idle = true;
  for (auto [ctx, stream] : session_.AllStreams()) {
    if (ctx != nullptr && d.cuCtxSetCurrent(ctx) != CUDA_SUCCESS) continue;
    // CUDA_SUCCESS: done; NOT_READY: running; an error: nothing will run.
    if (d.cuStreamQuery(stream) == CUDA_ERROR_NOT_READY) idle = false;
  }
  d.cuCtxSetCurrent(current);
  return idle;
}

Status IdleDetacher::Tick() {
  RGPU_RETURN_IF_ERROR(ReadControl(false));
  ReportUsage(false);
  if (detached_ || options_.mode == DetachMode::kNever) return {};
  if (options_.mode == DetachMode::kWaiting && waiting_ == 0) return {};
  auto idle = CoarseClock::now() - last_activity_;
  if (idle < std::chrono::duration<double>(options_.idle_timeout_s / 2)) return {};
  std::string why = Blocker();
  if (!why.empty()) {
    if (why != last_blocker_)
      RGPU_LOG_INFO("session %llu: idle but stays attached: %s", (unsigned long long)session_.id(), why.c_str());
    last_blocker_ = why;
    return {};
  }
  // Half the timeout: pin the host store now, in the background, so that
  // the detach does not wait for it (swap_store.h).
  heap_.PrepareStore();
  if (idle < std::chrono::duration<double>(options_.idle_timeout_s)) return {};
  if (!StreamsIdle()) return {};
  Detach();
  return {};
}

void IdleDetacher::Detach() {
  auto t0 = Clock::now();
  Result<uint64_t> moved = heap_.SwapOut(options_.paranoid_wipe);
  if (!moved.ok()) {
    // Still mapped and intact unless the wipe check failed; either way the
    // session keeps its GPU. Try again after another idle period.
    RGPU_LOG_ERROR("session %llu: detach failed, staying attached: %s", (unsigned long long)session_.id(),
                   moved.status().message().c_str());
    last_activity_ = CoarseClock::now();
    return;
  }
  auto dt = Clock::now() - t0;
  detached_ = true;
  resumed_ = false;
  // The rate leaves out pinning a new host store (first detach, or growth):
  // that is said separately.
  auto copy = dt - std::chrono::duration_cast<Clock::duration>(
                       std::chrono::duration<double, std::milli>(heap_.last_pin_ms()));
  RGPU_LOG_INFO("session %llu: detached: %llu bytes saved, wiped and freed in %.1f ms (%.1f GB/s)%s",
                (unsigned long long)session_.id(), (unsigned long long)*moved, Ms(copy), GBps(*moved, copy),
                heap_.last_pin_ms() > 0
                    ? (", after pinning the host store in " + std::to_string(heap_.last_pin_ms()) + " ms").c_str()
                    : "");
  (void)server::SendControl(control_fd_, {server::ControlKind::kDetached, session_.id(), "", -1, *moved});
  ReportUsage(true);
}

Status IdleDetacher::BeforeRequest() {
  if (!detached_) return {};
  auto t0 = Clock::now();
  // Whether the session may come back on another GPU of its type (said once
  // in the log when it may not: it then waits for its own).
  std::string why = mover_.Blocker();
  if (!why.empty() && why != last_move_blocker_)
    RGPU_LOG_INFO("session %llu: can reattach only on its own GPU: %s", (unsigned long long)session_.id(),
                  why.c_str());
  last_move_blocker_ = why;
  server::ControlMessage ask{server::ControlKind::kReattach, session_.id()};
  ask.value = why.empty() ? 1 : 0;
  RGPU_RETURN_IF_ERROR(server::SendControl(control_fd_, ask));
  resumed_ = false;
  resume_gpus_.clear();
  RGPU_RETURN_IF_ERROR(ReadControl(true));
  auto t1 = Clock::now();
  std::vector<int> was = session_.devices().backend_ordinals();
  bool move = !resume_gpus_.empty() && resume_gpus_ != was;
  if (move && !why.empty())
    return Status::Internal("reattach: the supervisor gave another GPU to a session that cannot move");
  Result<uint64_t> moved = move ? mover_.MoveTo(resume_gpus_) : heap_.SwapIn();
  if (!moved.ok()) return moved.take_status().With("reattach");
  auto t2 = Clock::now();
  detached_ = false;
  RGPU_LOG_INFO("session %llu: reattached after %.1f ms in queue%s: %llu bytes restored in %.1f ms (%.1f GB/s)",
                (unsigned long long)session_.id(), Ms(t1 - t0),
                move ? (" on GPU ordinal " + std::to_string(resume_gpus_[0]) + " (moved from " +
                        std::to_string(was.empty() ? -1 : was[0]) + ")").c_str()
                     : "",
                (unsigned long long)*moved, Ms(t2 - t1), GBps(*moved, t2 - t1));
  ReportUsage(true);
  return {};
}

void IdleDetacher::AfterRequest() {
  last_activity_ = CoarseClock::now();  // one read serves both
  ReportUsage(false, last_activity_);
}

}  // namespace rgpu::worker
