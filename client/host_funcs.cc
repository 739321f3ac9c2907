#include "client/host_funcs.h"

#include "client/connection.h"
#include "common/log.h"

namespace rgpu::client {

HostFuncs::~HostFuncs() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (runner_.joinable()) runner_.join();
}

uint64_t HostFuncs::Register(std::function<void()> fn, bool keep) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!runner_.joinable()) runner_ = std::thread([this] { RunLoop(); });
  uint64_t id = next_id_++;
  pending_[id] = std::move(fn);
  if (keep) keep_[id] = true;
  return id;
}

void HostFuncs::Forget(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_.erase(id);
  keep_.erase(id);
}

void HostFuncs::Fire(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  ready_.push_back(id);
  cv_.notify_all();
}

void HostFuncs::RunLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !ready_.empty(); });
    if (stop_) return;
    uint64_t id = ready_.front();
    ready_.pop_front();
    auto it = pending_.find(id);
    std::function<void()> fn;
    if (it != pending_.end() && keep_.count(id)) {
      fn = it->second;  // a graph's host function: runs again at the next launch
    } else if (it != pending_.end()) {
      fn = std::move(it->second);
      pending_.erase(it);
    } else {
      RGPU_LOG_WARN("worker named unknown host function %llu", (unsigned long long)id);
    }
    lock.unlock();
    if (fn) fn();
    // Whatever happened, release the stream.
    (void)conn_->Post(proto::CallId::kHostFuncDone, proto::HostFuncDoneReq{id});
    lock.lock();
  }
}

}  // namespace rgpu::client
