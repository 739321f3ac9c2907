#include "server/worker/output_capture.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "common/log.h"

namespace rgpu::worker {
namespace {
constexpr size_t kMaxBuffered = 16u << 20;  // drop beyond this rather than grow forever

bool MakePipe(int target_fd, int* read_end) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return false;
  fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
  fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
  if (dup2(p[1], target_fd) < 0) {
    close(p[0]);
    close(p[1]);
    return false;
  }
  close(p[1]);
  *read_end = p[0];
  return true;
}
}  // namespace

Status OutputCapture::Start() {
  fflush(stdout);
  fflush(stderr);
  int saved_err = dup(2);
  if (saved_err < 0) return Status::Errno(Code::kInternal, "dup stderr", errno);
  fcntl(saved_err, F_SETFD, FD_CLOEXEC);
  if (!MakePipe(1, &out_read_) || !MakePipe(2, &err_read_))
    return Status::Errno(Code::kInternal, "pipe for device output", errno);
  SetLogFd(saved_err);  // the worker's own log stays with the server
  setvbuf(stdout, nullptr, _IONBF, 0);
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) return Status::Errno(Code::kInternal, "pipe", errno);
  reader_ = std::thread([this] { ReadLoop(); });
  return {};
}

OutputCapture::~OutputCapture() {
  if (reader_.joinable()) {
    stop_ = true;
    char c = 1;
    ssize_t ignored = write(wake_[1], &c, 1);
    (void)ignored;
    reader_.join();
  }
  for (int fd : {out_read_, err_read_, wake_[0], wake_[1]})
    if (fd >= 0) close(fd);
}

void OutputCapture::ReadAvailable() {
  char buf[65536];
  for (auto [fd, dst] : {std::pair{out_read_, &out_}, std::pair{err_read_, &err_}}) {
    for (;;) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) break;
      if (dst->size() < kMaxBuffered) dst->append(buf, static_cast<size_t>(n));
    }
  }
}

void OutputCapture::ReadLoop() {
  while (!stop_) {
    pollfd fds[3] = {{out_read_, POLLIN, 0}, {err_read_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    int rc = poll(fds, 3, -1);
    if (rc < 0 && errno != EINTR) return;
    std::lock_guard<std::mutex> lock(mu_);
    ReadAvailable();
  }
}

void OutputCapture::Take(std::string* out, std::string* err) {
  fflush(stdout);
  fflush(stderr);
  std::lock_guard<std::mutex> lock(mu_);
  if (out_read_ >= 0) ReadAvailable();  // what the reader has not reached yet
  out->swap(out_);
  err->swap(err_);
  out_.clear();
  err_.clear();
}

}  // namespace rgpu::worker
