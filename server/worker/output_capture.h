// OutputCapture: the worker's stdout and stderr, carried to the client.
//
// Device printf and device-side assert messages are written by the CUDA
// driver to the worker's fd 1 / fd 2. They belong to the client program, so
// both fds are redirected into pipes; a reader thread empties the pipes into
// a buffer (so the driver never blocks on a full pipe), and the serving
// thread sends what was captured to the client before each reply, which
// keeps device output ahead of the host output that follows a
// synchronisation, as locally. The worker's own log keeps the original stderr.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"

namespace rgpu::worker {

// Event kinds carried in the call field of kEvent frames.
enum class EventKind : uint16_t { kStdout = 1, kStderr = 2, kQueuePosition = 3, kHostFunc = 4 };

class OutputCapture {
 public:
  OutputCapture() = default;
  ~OutputCapture();
  // Redirects fd 1 and 2. On failure nothing is redirected.
  Status Start();
  // Everything captured so far from fd 1 and fd 2 (taken, not copied).
  void Take(std::string* out, std::string* err);

 private:
  void ReadLoop();
  void ReadAvailable();  // with mu_ held
  int out_read_ = -1, err_read_ = -1;
  int wake_[2] = {-1, -1};
  std::mutex mu_;
  std::string out_, err_;
  std::thread reader_;
  std::atomic<bool> stop_{false};
};

}  // namespace rgpu::worker
