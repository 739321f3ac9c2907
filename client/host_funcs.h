// HostFuncs: the client's side of host functions (cuLaunchHostFunc,
// cuStreamAddCallback). The worker tells us when the stream reaches one; a
// dedicated thread runs it (never the receiver thread: a slow callback must
// not stall replies) and then tells the worker, which lets the stream go on.
// Thread-safe. The thread starts with the first host function.
#pragma once

#include <cuda.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace rgpu::client {

class Connection;

class HostFuncs {
 public:
  explicit HostFuncs(Connection* conn) : conn_(conn) {}
  ~HostFuncs();
  // Remembers fn for one run (or, with keep, for every run until Forget:
  // host functions of captured graphs); returns the id the worker will name.
  uint64_t Register(std::function<void()> fn, bool keep = false);
  void Forget(uint64_t id);
  // From the receiver thread: the stream reached host function `id`.
  void Fire(uint64_t id);

 private:
  void RunLoop();
  Connection* conn_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<uint64_t, std::function<void()>> pending_;
  std::unordered_map<uint64_t, bool> keep_;  // ids registered with keep
  std::deque<uint64_t> ready_;
  uint64_t next_id_ = 1;
  bool stop_ = false;
  std::thread runner_;
};

}  // namespace rgpu::client
