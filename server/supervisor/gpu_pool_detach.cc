// GpuPool, idle detach and reattach: the supervisor's half
// (docs/time-slicing.md; the worker's half is server/worker/swap.h).
//
// A detached session's worker keeps running and keeps its client; it holds
// no GPU lease. Its record moves from its GPUs' holders to detached_, and
// its GPUs go to whoever waits. When its client calls again, the worker
// asks for a GPU back (kReattach; `value` 1 when the session can move to
// another GPU, server/worker/session_move.h): an entry joins the queue like
// any other session (FIFO) and, at the head, is served as soon as a suitable
// GPU is free: its own, or, for a session that can move, any free GPU of
// the same type (same name and memory). kResume names the GPU it got; the
// worker restores its memory there (moving the session if it is another).
//
// Attached sessions are told how many sessions wait (kWaiting) whenever that
// changes; with --detach-idle=waiting they detach only while someone does.
#include <poll.h>
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
      // Free for the next session: its warm worker, if deferred, is due now.
      if (g.holders.empty() && g.warm_pid < 0 && !g.out) SpawnWarm(g);
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
      d->can_move = m.value != 0 && d->gpus.size() == 1;
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

bool GpuPool::DrainDetachedControl(pid_t worker_pid) {
  auto record_fd = [&](bool* exists) {
    *exists = false;
    for (const Holder& d : detached_)
      if (d.worker_pid == worker_pid) {
        *exists = true;
        return d.ctl;
      }
    return -1;
  };
  bool existed = false;
  record_fd(&existed);
  if (!existed) return false;
  for (;;) {
    bool exists = false;
    const int fd = record_fd(&exists);
    if (!exists) return true;  // a message (kReleased) ended it
    if (fd < 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0 || (p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) return false;
    bool changed = false;
    if (!OnDetachedPoll(p, &changed)) return false;
  }
}

int GpuPool::FreeGpuLike(int like) const {
  const Gpu& model = gpus_[like];
  if (model.name.empty()) return -1;  // type unknown: never guess
  for (size_t i = 0; i < gpus_.size(); ++i) {
    const Gpu& g = gpus_[i];
    if (static_cast<int>(i) != like && g.holders.empty() && !g.out && g.name == model.name &&
        g.total_mem == model.total_mem)
      return static_cast<int>(i);
  }
  return -1;
}

bool GpuPool::TryReattach(const Waiting& w) {
  auto d = detached_.begin();
  while (d != detached_.end() && d->worker_pid != w.reattach_pid) ++d;
  if (d == detached_.end() || d->ctl < 0) return true;  // gone: drop the entry
  // Its own GPUs when free; else, for a session that can move, any free GPU
  // of the same type (its own stays as it is: busy or out of the pool).
  std::vector<int> target = d->gpus;
  bool ready = true, own_out = false;  // ready: its own GPUs are free
  for (int p : d->gpus) {
    own_out |= gpus_[p].out;
    ready &= gpus_[p].holders.empty() && !gpus_[p].out;
  }
  if (!ready && d->can_move && d->gpus.size() == 1) {
    int other = FreeGpuLike(d->gpus[0]);
    if (other >= 0) {
      target = {other};
      ready = true;
    }
  }
  if (!ready && own_out && !d->can_move) {
    // Its context and addresses live on that GPU: it cannot go on.
    RGPU_LOG_ERROR("session %llu cannot reattach: its GPU left the pool; ending it", (unsigned long long)d->session_id);
    kill(d->worker_pid, SIGKILL);
    return true;
  }
  if (!ready) return false;
  ControlMessage resume{ControlKind::kResume, d->session_id};
  resume.gpus = target;  // backend ordinals: positions in the pool
  if (Status st = SendControl(d->ctl, resume); !st.ok()) {
    close(d->ctl);
    d->ctl = -1;
    return true;
  }
  std::string from;
  if (target != d->gpus)
    for (int p : d->gpus) from += (from.empty() ? " (moved from gpu " : ",") + std::to_string(gpus_[p].index);
  if (!from.empty()) from += ")";
  Holder h = *d;
  h.gpus = target;
  h.reattach_queued = false;
  h.bytes_swapped = 0;
  h.told_waiting = UINT64_MAX;  // tell it again (it may have missed changes)
  std::string list;
  for (int p : h.gpus) {
    gpus_[p].holders.push_back(h);
    h.ctl = -1;  // only the first record has the channel
    list += (list.empty() ? "" : ",") + std::to_string(gpus_[p].index);
  }
  RGPU_LOG_INFO("gpu %s: session %llu reattached after %.1f ms in queue (%.1f s detached)%s", list.c_str(),
                (unsigned long long)d->session_id, Ms(Clock::now() - w.since),
                Ms(Clock::now() - d->detached_since) / 1e3, from.c_str());
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
