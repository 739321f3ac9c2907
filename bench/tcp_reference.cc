#include "bench/tcp_reference.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "bench/delay_proxy.h"
#include "common/net.h"

namespace rgpu::bench {
namespace {

// A listening loopback socket whose one connection is served by `serve` on
// its own thread; the client side connects directly or through a DelayProxy.
class Loopback {
 public:
  ~Loopback() {
    if (client_fd_ >= 0) close(client_fd_);  // the peer thread sees EOF and returns
    if (peer_.joinable()) peer_.join();
    proxy_.reset();
    if (listen_fd_ >= 0) close(listen_fd_);
  }

  // Starts the peer thread, then connects the calling thread's socket.
  Status Open(double one_way_delay_ms, std::function<void(int fd)> serve) {
    Result<int> lfd = net::Listen(net::HostPort{"127.0.0.1", 0}, 4);
    if (!lfd.ok()) return lfd.take_status().With("tcp reference");
    listen_fd_ = *lfd;
    Result<uint16_t> port = net::LocalPort(listen_fd_);
    if (!port.ok()) return port.take_status().With("tcp reference");
    peer_ = std::thread([this, serve = std::move(serve)] {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      net::SetNoDelay(fd);
      serve(fd);
      close(fd);
    });
    net::HostPort target{"127.0.0.1", *port};
    if (one_way_delay_ms > 0) {
      DelayProxyOptions po;
      po.target = "127.0.0.1:" + std::to_string(*port);
      po.one_way_delay_ms = one_way_delay_ms;
      Result<std::unique_ptr<DelayProxy>> p = DelayProxy::Start(po);
      if (!p.ok()) {
        shutdown(listen_fd_, SHUT_RDWR);  // unblocks accept
        return p.take_status().With("tcp reference");
      }
      proxy_ = std::move(p.value());
      target.port = proxy_->port();
    }
    Result<int> cfd = net::Connect(target, 5000);
    if (!cfd.ok()) {
      shutdown(listen_fd_, SHUT_RDWR);
      return cfd.take_status().With("tcp reference");
    }
    client_fd_ = *cfd;
    return {};
  }
  int fd() const { return client_fd_; }

 private:
  int listen_fd_ = -1;
  int client_fd_ = -1;
  std::thread peer_;
  std::unique_ptr<DelayProxy> proxy_;
};

// A buffer of `n` bytes with every page written once.
std::unique_ptr<uint8_t[]> TouchedBuffer(uint64_t n) {
  std::unique_ptr<uint8_t[]> b(new uint8_t[n]);
  memset(b.get(), 0x5a, n);
  return b;
}

}  // namespace

Result<Latency> TcpPingPong(size_t request_bytes, size_t reply_bytes, int warmup, int iterations,
                            double one_way_delay_ms) {
  if (request_bytes == 0 || reply_bytes == 0 || iterations <= 0)
    return Status::Invalid("tcp ping-pong: sizes and iterations must be positive");
  Loopback link;
  RGPU_RETURN_IF_ERROR(link.Open(one_way_delay_ms, [=](int fd) {
    std::vector<uint8_t> in(request_bytes), out(reply_bytes, 0x11);
    while (net::ReadExact(fd, in.data(), in.size()).ok()) {
      if (!net::WriteAll(fd, out.data(), out.size()).ok()) return;
    }
  }));
  std::vector<uint8_t> req(request_bytes, 0x22), rep(reply_bytes);
  std::vector<double> samples;
  samples.reserve(iterations);
  for (int i = 0; i < warmup + iterations; ++i) {
    BenchClock::time_point t0 = BenchClock::now();
    RGPU_RETURN_IF_ERROR(net::WriteAll(link.fd(), req.data(), req.size()));
    RGPU_RETURN_IF_ERROR(net::ReadExact(link.fd(), rep.data(), rep.size()));
    if (i >= warmup) samples.push_back(SecondsSince(t0));
  }
  return LatencyOf(std::move(samples));
}

Result<double> TcpStreamGBps(uint64_t bytes, int reps, double one_way_delay_ms) {
  if (bytes == 0 || reps <= 0) return Status::Invalid("tcp stream: bytes and reps must be positive");
  std::unique_ptr<uint8_t[]> src = TouchedBuffer(bytes);
  Loopback link;
  RGPU_RETURN_IF_ERROR(link.Open(one_way_delay_ms, [bytes](int fd) {
    std::unique_ptr<uint8_t[]> dst = TouchedBuffer(bytes);
    const uint8_t ack = 1;
    while (net::ReadExact(fd, dst.get(), bytes).ok()) {
      if (!net::WriteAll(fd, &ack, 1).ok()) return;
    }
  }));
  std::vector<double> gbps;
  for (int i = 0; i < 1 + reps; ++i) {
    BenchClock::time_point t0 = BenchClock::now();
    RGPU_RETURN_IF_ERROR(net::WriteAll(link.fd(), src.get(), bytes));
    uint8_t ack = 0;
    RGPU_RETURN_IF_ERROR(net::ReadExact(link.fd(), &ack, 1));
    if (i > 0) gbps.push_back(static_cast<double>(bytes) / SecondsSince(t0) / 1e9);
  }
  return Median(std::move(gbps));
}

}  // namespace rgpu::bench
