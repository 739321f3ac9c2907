// GpuPool, idle detach and reattach: the supervisor's half
// (docs/time-slicing.md; the worker's half is server/worker/swap.h).
//
// A detached session's worker keeps running and keeps its client; it holds
// no GPU lease. Its record moves from its GPUs' holders to detached_, and
// its GPUs go to whoever waits. When its client calls again, the worker
// asks for its GPUs back (kReattach): an entry joins the queue like any
// other session (FIFO) and, at the head, is served as soon as those same
// GPUs are free (its context and memory addresses live on them). The worker
// hears kResume and restores its memory.
//
// Attached sessions are told how many sessions wait (kWaiting) whenever that
// changes; with --detach-idle=waiting they detach only while someone does.
#include <signal.h>

#include "common/log.h"
#include "server/supervisor/gpu_pool.h"
#include "server/supervisor/supervisor.h"

namespace rgpu::server {
namespace {
double Ms(GpuPool::Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
}  // namespace

bool GpuPool::OnHolderMessage(pid_t worker_pid, const ControlMessage& m) {
  if (m.kind == ControlKind::kUsage) {
    for (Gpu& g : gpus_)
      for (Holder& h : g.holders)
        if (h.worker_pid == worker_pid && h.ctl >= 0) h.bytes_held = m.value;
    return false;
  }
  if (m.kind != ControlKind::kDetached) {
    RGPU_LOG_WARN("worker %d: unexpected control message %d", worker_pid, static_cast<int>(m.kind));
    return false;
  }
  // Saved, wiped and freed by the worker: its GPUs are free from now on.
  Holder kept;
  bool found = false;
  std::string list;
  for (Gpu& g : gpus_) {
    for (auto h = g.holders.begin(); h != g.holders.end(); ++h) {
      if (h->worker_pid != worker_pid) continue;
      if (h->ctl >= 0) {
        kept = *h;
        found = true;
      }
      g.holders.erase(h);
      if (g.holders.empty()) g.free_since = Clock::now();
      list += (list.empty() ? "" : ",") + std::to_string(g.index);
      break;
    }
  }
  if (!found) return false;
  kept.bytes_swapped = m.value;
  kept.bytes_held = 0;
  kept.detached_since = Clock::now();
  kept.reattach_queued = false;
  RGPU_LOG_INFO("gpu %s: session %llu detached (%llu bytes swapped out); GPU free for others", list.c_str(),
                (unsigned long long)kept.session_id, (unsigned long long)m.value);
  detached_.push_back(std::move(kept));
  return true;
}

bool GpuPool::OnDetachedPoll(const pollfd& p, bool* changed) {
  for (auto d = detached_.begin(); d != detached_.end(); ++d) {
    if (d->ctl < 0 || p.fd != d->ctl) continue;
    ControlMessage m;
    Status st = ReceiveControl(d->ctl, &m);
    if (!st.ok()) {
      // The worker is going away: OnChildExit forgets it.
      close(d->ctl);
      d->ctl = -1;
      *changed = true;
      return true;
    }
    if (m.kind == ControlKind::kUsage) {
      d->bytes_held = m.value;
    } else if (m.kind == ControlKind::kReattach && !d->reattach_queued) {
      Waiting w;
      w.session_id = d->session_id;
      w.identity = d->identity;
      w.peer = "reattach";
      w.since = Clock::now();
      w.gpus_wanted = static_cast<int>(d->gpus.size());
      w.reattach_pid = d->worker_pid;
      queue_.push_back(std::move(w));
      d->reattach_queued = true;
      *changed = true;
    } else if (m.kind == ControlKind::kReleased) {
      // The client ended while detached: nothing of it is on any GPU.
      pid_t pid = d->worker_pid;
      ForgetDetached(pid, "ended while detached");
      *changed = true;
    } else {
      RGPU_LOG_WARN("worker %d: unexpected control message %d", d->worker_pid, static_cast<int>(m.kind));
    }
    return true;
  }
  return false;
}

bool GpuPool::TryReattach(const Waiting& w) {
  auto d = detached_.begin();
  while (d != detached_.end() && d->worker_pid != w.reattach_pid) ++d;
  if (d == detached_.end() || d->ctl < 0) return true;  // gone: drop the entry
  for (int p : d->gpus) {
    if (gpus_[p].out) {
      // Its context and addresses live on that GPU: it cannot go on.
      RGPU_LOG_ERROR("session %llu cannot reattach: gpu %d left the pool; ending it",
                     (unsigned long long)d->session_id, gpus_[p].index);
      kill(d->worker_pid, SIGKILL);
      return true;
    }
    if (!gpus_[p].holders.empty()) return false;
  }
  if (Status st = SendControl(d->ctl, {ControlKind::kResume, d->session_id}); !st.ok()) {
    close(d->ctl);
    d->ctl = -1;
    return true;
  }
  Holder h = *d;
  h.reattach_queued = false;
  h.bytes_swapped = 0;
  h.told_waiting = UINT64_MAX;  // tell it again (it may have missed changes)
  std::string list;
  for (int p : h.gpus) {
    gpus_[p].holders.push_back(h);
    h.ctl = -1;  // only the first record has the channel
    list += (list.empty() ? "" : ",") + std::to_string(gpus_[p].index);
  }
  RGPU_LOG_INFO("gpu %s: session %llu reattached after %.1f ms in queue (%.1f s detached)", list.c_str(),
                (unsigned long long)d->session_id, Ms(Clock::now() - w.since),
                Ms(Clock::now() - d->detached_since) / 1e3);
  detached_.erase(d);
  return true;
}

bool GpuPool::ForgetDetached(pid_t worker_pid, const char* how) {
  for (auto d = detached_.begin(); d != detached_.end(); ++d) {
    if (d->worker_pid != worker_pid) continue;
    RGPU_LOG_INFO("session %llu %s (detached)", (unsigned long long)d->session_id, how);
    if (d->ctl >= 0) close(d->ctl);
    detached_.erase(d);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->reattach_pid == worker_pid) it = queue_.erase(it);
      else ++it;
    }
    return true;
  }
  return false;
}

void GpuPool::TellWaiting() {
  uint64_t waiting = queue_.size();
  for (Gpu& g : gpus_)
    for (Holder& h : g.holders) {
      if (h.ctl < 0 || h.told_waiting == waiting) continue;
      // Never block the supervisor on a busy worker: it is tried again at
      // the next change (workers drain their channel at least once a second).
      if (SendControl(h.ctl, {ControlKind::kWaiting, h.session_id, "", -1, waiting}, /*nonblocking=*/true).ok())
        h.told_waiting = waiting;
    }
}

}  // namespace rgpu::server
