// GpuPool::StatusJson: what `rgpu status` shows (served on the admin socket).
//
//   {"backend": "sim",
//    "gpus": [{"index": 0, "name": "NVIDIA H200", "memory_total": 150..., "state":
//              "leased"|"free"|"starting"|"out", "warm_worker": true,
//              "warm_worker_due_s": when a deferred warm worker starts,
//              free:   "idle_s": seconds since its last lease ended,
//              leased: "session", "holder" (identity), "held_s", "session_gpus"
//                      (host indices of all the session's GPUs),
//                      "holders": [{"session", "identity"}] (helpers sharing it)}],
//    "sessions": [{"session", "identity", "state": "attached", "gpus": [host
//                  indices, client order], "held_s", "bytes_held",
//                  "bytes_swapped": 0, "worker_pid"},
//                 {"session", "identity", "state": "detached"|"waiting" (to
//                  reattach), "gpus", "detached_s", "bytes_held" (module
//                  globals left in its context), "bytes_swapped", "worker_pid"},
//                 {"session", "identity", "state": "waiting", "gpus_wanted",
//                  "waiting_s"}],
//    "queue": [{"position", "session", "identity", "gpus_wanted", "reattach"
//               (a detached session wanting its GPUs back), "waiting_s"}],
//    "totals": {"gpus", "gpus_free", "gpus_leased", "gpus_out",
//               "sessions_attached", "sessions_waiting", "sessions_served"},
//    "sessions_active": N, "sessions_served": N}
//
// Each attached session appears once in "sessions" (with its worker's pid),
// whatever the number of GPUs it holds. Compact JSON on one line.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "server/supervisor/gpu_pool.h"
#include "server/supervisor/supervisor.h"

namespace rgpu::server {
namespace {
double Seconds(GpuPool::Clock::duration d) { return std::chrono::duration<double>(d).count(); }
}  // namespace

std::string GpuPool::StatusJson() const {
  using nlohmann::json;
  const auto now = Clock::now();
  auto host_indices = [&](const std::vector<int>& positions) {
    json out = json::array();
    for (int p : positions) out.push_back(gpus_[p].index);
    return out;
  };
  json gpus = json::array(), sessions = json::array(), queue = json::array();
  int free = 0, leased = 0, out_of_pool = 0;
  for (size_t i = 0; i < gpus_.size(); ++i) {
    const Gpu& g = gpus_[i];
    const char* state = g.out ? "out" : !g.holders.empty() ? "leased" : g.warm_ready ? "free" : "starting";
    json j = {{"index", g.index}, {"state", state}, {"warm_worker", g.warm_ready}};
    if (!g.name.empty()) j["name"] = g.name;
    if (g.total_mem != 0) j["memory_total"] = g.total_mem;
    if (g.spawn_at) j["warm_worker_due_s"] = std::max(0.0, Seconds(*g.spawn_at - now));
    if (g.holders.empty()) {
      j["idle_s"] = Seconds(now - g.free_since);
    } else {
      const Holder& first = g.holders.front();
      j["session"] = first.session_id;
      j["holder"] = first.identity;
      j["held_s"] = Seconds(now - first.since);
      j["session_gpus"] = host_indices(first.gpus);
      json holders = json::array();
      for (const Holder& h : g.holders) holders.push_back({{"session", h.session_id}, {"identity", h.identity}});
      j["holders"] = std::move(holders);
    }
    gpus.push_back(std::move(j));
    for (const Holder& h : g.holders) {
      if (!h.gpus.empty() && h.gpus[0] != static_cast<int>(i)) continue;  // listed under its first GPU
      sessions.push_back({{"session", h.session_id},
                          {"identity", h.identity},
                          {"state", "attached"},
                          {"gpus", host_indices(h.gpus.empty() ? std::vector<int>{static_cast<int>(i)} : h.gpus)},
                          {"held_s", Seconds(now - h.since)},
                          {"bytes_held", h.bytes_held},
                          {"bytes_swapped", 0},
                          {"worker_pid", h.worker_pid}});
    }
    free += std::string(state) == "free";
    leased += !g.holders.empty();
    out_of_pool += g.out;
  }
  // Detached sessions (gpu_pool_detach.cc): "waiting" once a call wants
  // the GPU back, else "detached".
  for (const Holder& d : detached_)
    sessions.push_back({{"session", d.session_id},
                        {"identity", d.identity},
                        {"state", d.reattach_queued ? "waiting" : "detached"},
                        {"gpus", host_indices(d.gpus)},
                        {"detached_s", Seconds(now - d.detached_since)},
                        {"bytes_held", d.bytes_held},
                        {"bytes_swapped", d.bytes_swapped},
                        {"worker_pid", d.worker_pid}});
  int pos = 0;
  for (const Waiting& w : queue_) {
    ++pos;
    queue.push_back({{"position", pos},
                     {"session", w.session_id},
                     {"identity", w.identity},
                     {"gpus_wanted", w.gpus_wanted},
                     {"reattach", w.reattach_pid > 0},
                     {"waiting_s", Seconds(now - w.since)}});
    if (w.reattach_pid > 0) continue;  // listed above, with its detached state
    sessions.push_back({{"session", w.session_id},
                        {"identity", w.identity},
                        {"state", "waiting"},
                        {"gpus_wanted", w.gpus_wanted},
                        {"waiting_s", Seconds(now - w.since)}});
  }
  json js = {{"backend", options_.backend},
             {"gpus", std::move(gpus)},
             {"sessions", std::move(sessions)},
             {"queue", std::move(queue)},
             {"totals",
              {{"gpus", gpus_.size()},
               {"gpus_free", free},
               {"gpus_leased", leased},
               {"gpus_out", out_of_pool},
               {"sessions_attached", this->sessions()},
               {"sessions_waiting", queue_.size()},
               {"sessions_served", sessions_served_}}},
             {"sessions_active", this->sessions()},
             {"sessions_served", sessions_served_}};
  // Identities come from clients: never let bad UTF-8 make the dump throw.
  return js.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace rgpu::server
