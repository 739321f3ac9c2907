#include "bench/delay_proxy.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <vector>

#include "common/log.h"
#include "common/net.h"

namespace rgpu::bench {
namespace {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC on Linux

constexpr size_t kReadChunk = 256u << 10;  // largest single read
constexpr size_t kWriteBatch = 1u << 20;   // largest single gathered write
constexpr size_t kMaxIov = 64;
// Charged per queued chunk on top of its bytes, so that a sender dribbling
// one byte at a time cannot make the queue's bookkeeping unbounded.
constexpr size_t kChunkOverhead = 64;

// Sleeps until `t` on CLOCK_MONOTONIC (the clock steady_clock reads).
void SleepUntil(Clock::time_point t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  if (ns <= 0) return;
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

// A token bucket: Take(n) blocks until n bytes may leave without exceeding
// `bytes_per_s` on average and `burst` at once. The bucket starts full.
class Pacer {
 public:
  Pacer(double bytes_per_s, size_t burst)
      : rate_(bytes_per_s), burst_(static_cast<double>(burst)), tokens_(burst_), last_(Clock::now()) {}

  size_t burst() const { return static_cast<size_t>(burst_); }

  // n <= burst().
  void Take(size_t n) {
    Refill();
    const double want = static_cast<double>(n);
    if (tokens_ < want) {
      SleepUntil(last_ + std::chrono::nanoseconds(static_cast<int64_t>((want - tokens_) / rate_ * 1e9) + 1));
      Refill();
      tokens_ = std::max(tokens_, want);  // the wake-up rounding must not make it wait twice
    }
    tokens_ -= want;
  }

 private:
  void Refill() {
    Clock::time_point now = Clock::now();
    tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - last_).count() * rate_);
    last_ = now;
  }

  const double rate_, burst_;
  double tokens_;
  Clock::time_point last_;
};

// The burst for a rate: 4 ms of traffic, so that short windows stay close
// to the rate, but at least a full-size Ethernet frame (a slow link still
// sends in sensible pieces) and at most 256 KiB (a fast one is not bursty).
size_t BurstFor(double bytes_per_s) {
  return static_cast<size_t>(std::clamp(bytes_per_s * 0.004, 1500.0, 256.0 * 1024));
}

// Sends exactly `n` bytes of iov[*first...] (which holds at least n),
// advancing *first and the iovecs past them. False when the receiver is gone.
bool SendBytes(int fd, std::vector<iovec>* iov, size_t* first, size_t n) {
  iovec part[kMaxIov];
  while (n > 0) {
    // At most n bytes of the remaining iovecs.
    size_t count = 0, total = 0;
    for (size_t i = *first; i < iov->size() && count < kMaxIov && total < n; ++i) {
      part[count] = (*iov)[i];
      part[count].iov_len = std::min(part[count].iov_len, n - total);
      total += part[count++].iov_len;
    }
    msghdr msg{};
    msg.msg_iov = part;
    msg.msg_iovlen = count;
    ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;  // EPIPE / ECONNRESET: the receiver is gone
    }
    auto left = static_cast<size_t>(w);
    n -= left;
    while (*first < iov->size() && left >= (*iov)[*first].iov_len) left -= (*iov)[(*first)++].iov_len;
    if (*first < iov->size()) {
      (*iov)[*first].iov_base = static_cast<uint8_t*>((*iov)[*first].iov_base) + left;
      (*iov)[*first].iov_len -= left;
    }
  }
  return true;
}

void UpdateMax(std::atomic<uint64_t>* max, uint64_t v) {
  uint64_t cur = max->load(std::memory_order_relaxed);
  while (v > cur && !max->compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
  }
}

}  // namespace

// One direction of one connection: src is read, dst is written.
struct DelayProxy::Direction {
  struct Chunk {
    Clock::time_point due;
    std::vector<uint8_t> bytes;  // empty with eof set: forward end-of-stream
    bool eof = false;
  };
  int src = -1, dst = -1;
  std::atomic<uint64_t>* counter = nullptr;
  std::mutex mu;
  std::condition_variable cv;  // data queued, space freed, or the connection aborted
  std::deque<Chunk> queue;     // GUARDED_BY(mu)
  size_t buffered = 0;         // GUARDED_BY(mu): bytes + overhead of queued and in-flight chunks
};

struct DelayProxy::Conn {
  int client_fd = -1, target_fd = -1;
  Direction up, down;  // up: client -> target
  std::atomic<bool> aborted{false};
  std::atomic<int> threads_done{0};
  std::thread threads[4];

  // Ends the connection: both sockets are shut down, which wakes every thread
  // blocked in recv/send; waiting threads are woken too.
  void Abort() {
    if (aborted.exchange(true)) return;
    shutdown(client_fd, SHUT_RDWR);
    shutdown(target_fd, SHUT_RDWR);
    for (Direction* d : {&up, &down}) {
      std::lock_guard<std::mutex> lock(d->mu);
      d->cv.notify_all();
    }
  }
  ~Conn() {
    for (std::thread& t : threads)
      if (t.joinable()) t.join();
    if (client_fd >= 0) close(client_fd);
    if (target_fd >= 0) close(target_fd);
  }
};

DelayProxy::DelayProxy(DelayProxyOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<DelayProxy>> DelayProxy::Start(const DelayProxyOptions& options) {
  if (!(options.one_way_delay_ms >= 0 && options.one_way_delay_ms <= 60000))
    return Status::Invalid("delay proxy: one-way delay " + std::to_string(options.one_way_delay_ms) +
                           " ms outside 0..60000");
  if (!(options.rate_mbit == 0 || (options.rate_mbit >= 1 && options.rate_mbit <= 1e6))) {
    char rate[64];
    snprintf(rate, sizeof rate, "%g", options.rate_mbit);
    return Status::Invalid(std::string("delay proxy: rate ") + rate +
                           " Mbit/s is neither 0 (unlimited) nor within 1..1000000");
  }
  if (options.max_buffered_bytes < 4096)
    return Status::Invalid("delay proxy: max_buffered_bytes " +
                           std::to_string(options.max_buffered_bytes) + " < 4096");
  Result<net::HostPort> target = net::ParseHostPort(options.target, 0);
  if (!target.ok() || target->port == 0)
    return Status::Invalid("delay proxy: target '" + options.target + "' is not HOST:PORT");
  Result<net::HostPort> listen = net::ParseHostPort(options.listen, 0);
  if (!listen.ok()) return Status(listen.status()).With("delay proxy: listen " + options.listen);

  std::unique_ptr<DelayProxy> p(new DelayProxy(options));
  p->listen_host_ = listen->host;
  Result<int> fd = net::Listen(*listen, 128);
  if (!fd.ok()) return fd.take_status().With("delay proxy");
  p->listen_fd_ = *fd;
  Result<uint16_t> port = net::LocalPort(p->listen_fd_);
  if (!port.ok()) return port.take_status().With("delay proxy");
  p->port_ = *port;
  if (pipe2(p->wake_fds_, O_CLOEXEC) != 0)
    return Status::Errno(Code::kInternal, "delay proxy: pipe2", errno);
  p->accept_thread_ = std::thread([raw = p.get()] { raw->AcceptLoop(); });
  return p;
}

DelayProxy::~DelayProxy() { Stop(); }

std::string DelayProxy::address() const {
  bool v6 = listen_host_.find(':') != std::string::npos;
  return (v6 ? "[" + listen_host_ + "]" : listen_host_) + ":" + std::to_string(port_);
}

DelayProxyCounters DelayProxy::counters() const {
  DelayProxyCounters c;
  c.bytes_up = bytes_up_.load();
  c.bytes_down = bytes_down_.load();
  c.connections = connections_.load();
  c.failed_connects = failed_connects_.load();
  c.finished = finished_.load();
  c.peak_buffered = peak_buffered_.load();
  return c;
}

void DelayProxy::Stop() {
  std::call_once(stop_once_, [this] {
    stopping_ = true;
    if (wake_fds_[1] >= 0) {
      char b = 1;
      ssize_t ignored = write(wake_fds_[1], &b, 1);
      (void)ignored;
    }
    if (accept_thread_.joinable()) accept_thread_.join();
    ReapFinished(/*all=*/true);
    for (int* fd : {&listen_fd_, &wake_fds_[0], &wake_fds_[1]}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  });
}

void DelayProxy::AcceptLoop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
    // The timeout only paces the reaping of finished connections.
    int n = poll(fds, 2, 100);
    ReapFinished(/*all=*/false);
    if (n < 0 && errno != EINTR) {
      RGPU_LOG_ERROR("delay proxy: poll: %s", strerror(errno));
      return;
    }
    if (n <= 0 || stopping_ || !(fds[0].revents & POLLIN)) continue;
    int cfd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (cfd < 0) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
        RGPU_LOG_WARN("delay proxy: accept: %s", strerror(errno));
      continue;
    }
    StartConn(cfd);
  }
}

void DelayProxy::StartConn(int client_fd) {
  net::SetNoDelay(client_fd);
  Result<net::HostPort> target = net::ParseHostPort(options_.target, 0);  // checked in Start
  Result<int> tfd = net::Connect(*target, options_.connect_timeout_ms);
  if (!tfd.ok()) {
    // The client sees its connection closed at once, as if the target refused.
    RGPU_LOG_WARN("delay proxy: %s", tfd.status().message().c_str());
    failed_connects_++;
    close(client_fd);
    return;
  }
  auto c = std::make_unique<Conn>();
  c->client_fd = client_fd;
  c->target_fd = *tfd;
  c->up.src = client_fd;
  c->up.dst = *tfd;
  c->up.counter = &bytes_up_;
  c->down.src = *tfd;
  c->down.dst = client_fd;
  c->down.counter = &bytes_down_;
  Conn* raw = c.get();
  connections_++;
  raw->threads[0] = std::thread([this, raw] { ReadLoop(raw, &raw->up); });
  raw->threads[1] = std::thread([this, raw] { WriteLoop(raw, &raw->up); });
  raw->threads[2] = std::thread([this, raw] { ReadLoop(raw, &raw->down); });
  raw->threads[3] = std::thread([this, raw] { WriteLoop(raw, &raw->down); });
  std::lock_guard<std::mutex> lock(conns_mu_);
  conns_.push_back(std::move(c));
}

void DelayProxy::ReapFinished(bool all) {
  std::list<std::unique_ptr<Conn>> done;
  uint64_t n_done = 0;
  {
    std::lock_guard<std::mutex> lock(conns_mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (all) (*it)->Abort();
      if (all || (*it)->threads_done.load() == 4) {
        done.push_back(std::move(*it));
        it = conns_.erase(it);
        ++n_done;
      } else {
        ++it;
      }
    }
  }
  done.clear();  // joins the threads and closes the sockets, outside the lock
  finished_ += n_done;
}

void DelayProxy::ReadLoop(Conn* c, Direction* d) {
  const size_t cap = options_.max_buffered_bytes;
  const auto delay = std::chrono::nanoseconds(static_cast<int64_t>(options_.one_way_delay_ms * 1e6));
  std::vector<uint8_t> scratch(kReadChunk);
  for (;;) {
    size_t room = 0;
    {
      std::unique_lock<std::mutex> lock(d->mu);
      // Bounded buffering: stop reading (so TCP pushes back on the sender)
      // until the writer has drained enough.
      d->cv.wait(lock, [&] { return d->buffered + kChunkOverhead < cap || c->aborted; });
      if (c->aborted) break;
      room = cap - d->buffered - kChunkOverhead;
    }
    ssize_t n = recv(d->src, scratch.data(), std::min(room, kReadChunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {  // reset or error: the whole connection ends
      c->Abort();
      break;
    }
    Direction::Chunk chunk;
    chunk.due = Clock::now() + delay;
    if (n == 0) {
      chunk.eof = true;
    } else {
      chunk.bytes.assign(scratch.data(), scratch.data() + n);
      d->counter->fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    }
    {
      std::lock_guard<std::mutex> lock(d->mu);
      if (c->aborted) break;
      d->buffered += chunk.bytes.size() + kChunkOverhead;
      UpdateMax(&peak_buffered_, d->buffered);
      d->queue.push_back(std::move(chunk));
      d->cv.notify_all();
    }
    if (n == 0) break;
  }
  c->threads_done++;
}

void DelayProxy::WriteLoop(Conn* c, Direction* d) {
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // wake within ~µs of each chunk's due time
  std::unique_ptr<Pacer> pacer;
  if (options_.rate_mbit > 0) {
    const double bytes_per_s = options_.rate_mbit * 1e6 / 8;
    pacer = std::make_unique<Pacer>(bytes_per_s, BurstFor(bytes_per_s));
  }
  std::vector<Direction::Chunk> batch;
  std::vector<iovec> iov;
  for (;;) {
    Clock::time_point due;
    {
      std::unique_lock<std::mutex> lock(d->mu);
      d->cv.wait(lock, [&] { return !d->queue.empty() || c->aborted; });
      if (c->aborted) break;
      due = d->queue.front().due;
    }
    SleepUntil(due);
    // Take every chunk that is due (up to kWriteBatch bytes), in order. The
    // chunks stay counted in `buffered` until written.
    batch.clear();
    bool eof = false;
    size_t batch_bytes = 0, charged = 0;
    {
      std::lock_guard<std::mutex> lock(d->mu);
      Clock::time_point now = Clock::now();
      while (!d->queue.empty() && batch_bytes < kWriteBatch && batch.size() < kMaxIov &&
             (batch.empty() || d->queue.front().due <= now)) {
        Direction::Chunk& front = d->queue.front();
        eof = front.eof;
        batch_bytes += front.bytes.size();
        charged += front.bytes.size() + kChunkOverhead;
        batch.push_back(std::move(front));
        d->queue.pop_front();
        if (eof) break;
      }
    }
    iov.clear();
    for (Direction::Chunk& ch : batch)
      if (!ch.bytes.empty()) iov.push_back({ch.bytes.data(), ch.bytes.size()});
    bool failed = false;
    size_t first = 0;
    // Unpaced: the whole batch in as few writes as the socket takes. Paced:
    // one burst at a time, each once the bucket allows it.
    for (size_t left = batch_bytes; left > 0 && !failed && !c->aborted;) {
      size_t n = left;
      if (pacer != nullptr) {
        n = std::min(n, pacer->burst());
        pacer->Take(n);
      }
      failed = !SendBytes(d->dst, &iov, &first, n);
      left -= n;
    }
    failed = failed || c->aborted;
    {
      std::lock_guard<std::mutex> lock(d->mu);
      d->buffered -= charged;
      d->cv.notify_all();
    }
    if (failed) {
      c->Abort();
      break;
    }
    if (eof) {
      // The sender closed its side: pass the half-close on after the delay.
      shutdown(d->dst, SHUT_WR);
      break;
    }
  }
  c->threads_done++;
}

}  // namespace rgpu::bench
