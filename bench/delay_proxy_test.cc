#include "bench/delay_proxy.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bench/stats.h"
#include "common/net.h"

namespace rgpu::bench {
namespace {

using namespace std::chrono_literals;

// A loopback listener the test accepts from by hand.
struct Listener {
  Listener() {
    Result<int> fd = net::Listen(net::HostPort{"127.0.0.1", 0}, 16);
    EXPECT_TRUE(fd.ok()) << fd.status().message();
    this->fd = *fd;
    port = *net::LocalPort(this->fd);
  }
  ~Listener() { close(fd); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  int Accept() const {
    int c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c >= 0) net::SetNoDelay(c);
    return c;
  }
  int fd = -1;
  uint16_t port = 0;
};

std::unique_ptr<DelayProxy> StartProxy(const std::string& target, double delay_ms,
                                       size_t max_buffered = 8u << 20, double rate_mbit = 0) {
  DelayProxyOptions o;
  o.target = target;
  o.one_way_delay_ms = delay_ms;
  o.max_buffered_bytes = max_buffered;
  o.rate_mbit = rate_mbit;
  Result<std::unique_ptr<DelayProxy>> p = DelayProxy::Start(o);
  EXPECT_TRUE(p.ok()) << p.status().message();
  return p.ok() ? std::move(p.value()) : nullptr;
}

int ConnectTo(uint16_t port) {
  Result<int> fd = net::Connect(net::HostPort{"127.0.0.1", port}, 5000);
  EXPECT_TRUE(fd.ok()) << fd.status().message();
  return fd.ok() ? *fd : -1;
}

// Reads until EOF (or error); returns what was read.
std::string ReadToEnd(int fd) {
  std::string s;
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return s;
    s.append(buf, n);
  }
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

TEST(DelayProxyTest, RefusesBadOptions) {
  DelayProxyOptions o;
  o.target = "127.0.0.1:1";
  o.one_way_delay_ms = -1;
  EXPECT_FALSE(DelayProxy::Start(o).ok());
  o.one_way_delay_ms = 0;
  o.max_buffered_bytes = 100;
  EXPECT_FALSE(DelayProxy::Start(o).ok());
  o.max_buffered_bytes = 1 << 20;
  o.target = "nohost";
  EXPECT_FALSE(DelayProxy::Start(o).ok());
  o.target = "127.0.0.1:1";
  for (double bad : {-1.0, 0.5, 2e6, std::nan("")}) {
    o.rate_mbit = bad;
    Result<std::unique_ptr<DelayProxy>> p = DelayProxy::Start(o);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_NE(p.status().message().find("Mbit/s"), std::string::npos) << p.status().message();
  }
  for (double good : {0.0, 1.0, 1000.0, 1e6}) {
    o.rate_mbit = good;
    EXPECT_TRUE(DelayProxy::Start(o).ok()) << good;
  }
}

// Several connections at once, each streaming a distinct pattern in writes of
// random sizes through a small buffer and a delay; the target echoes every
// byte back. Both directions must come out complete and in order.
TEST(DelayProxyTest, BytesPreservedInOrderUnderLoad) {
  Listener target;
  auto proxy = StartProxy(target.address(), 0.2, /*max_buffered=*/64 << 10);
  ASSERT_NE(proxy, nullptr);
  constexpr int kConns = 4;
  constexpr size_t kBytes = 8u << 20;
  std::vector<std::thread> echoes;
  std::thread acceptor([&] {
    for (int i = 0; i < kConns; ++i) {
      int fd = target.Accept();
      ASSERT_GE(fd, 0);
      echoes.emplace_back([fd] {
        std::vector<char> buf(100000);
        for (;;) {
          ssize_t n = recv(fd, buf.data(), buf.size(), 0);
          if (n <= 0) break;
          if (!net::WriteAll(fd, buf.data(), n).ok()) break;
        }
        shutdown(fd, SHUT_WR);  // pass the client's end-of-stream back
        close(fd);
      });
    }
  });
  std::vector<std::thread> clients;
  std::atomic<int> good{0};
  for (int c = 0; c < kConns; ++c) {
    clients.emplace_back([&, c] {
      std::vector<uint8_t> data(kBytes);
      std::mt19937 rng(1234 + c);
      for (auto& b : data) b = static_cast<uint8_t>(rng());
      int fd = ConnectTo(proxy->port());
      std::thread sender([&] {
        std::mt19937 sizes(99 + c);
        size_t off = 0;
        while (off < kBytes) {
          size_t n = std::min<size_t>(kBytes - off, 1 + sizes() % 200000);
          if (!net::WriteAll(fd, data.data() + off, n).ok()) break;
          off += n;
        }
        shutdown(fd, SHUT_WR);
      });
      std::vector<uint8_t> back;
      back.reserve(kBytes);
      char buf[65536];
      for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        back.insert(back.end(), buf, buf + n);
      }
      sender.join();
      close(fd);
      if (back == data) good++;
    });
  }
  for (auto& t : clients) t.join();
  acceptor.join();
  for (auto& t : echoes) t.join();
  EXPECT_EQ(good.load(), kConns);
  DelayProxyCounters c = proxy->counters();
  EXPECT_EQ(c.bytes_up, kConns * kBytes);
  EXPECT_EQ(c.bytes_down, kConns * kBytes);
  EXPECT_EQ(c.connections, static_cast<uint64_t>(kConns));
  EXPECT_LE(c.peak_buffered, 64u << 10);
  EXPECT_TRUE(WaitFor([&] { return proxy->counters().finished == kConns; }, 3000ms));
}

// Median round trip through the proxy minus the direct one: at least the two
// added delays (a hard floor: nothing may overtake its due time), and not
// much more (a loaded CI machine gets a wide margin).
TEST(DelayProxyTest, AddedDelayWithinTolerance) {
  for (double one_way_ms : {0.1, 1.0}) {
    Listener target;
    auto proxy = StartProxy(target.address(), one_way_ms);
    ASSERT_NE(proxy, nullptr);
    std::thread echo([&] {
      for (int i = 0; i < 2; ++i) {  // direct, then through the proxy
        int fd = target.Accept();
        char b[32];
        while (net::ReadExact(fd, b, sizeof b).ok() && net::WriteAll(fd, b, sizeof b).ok()) {
        }
        close(fd);
      }
    });
    auto measure = [](int fd) {
      std::vector<double> rtt;
      char b[32] = {};
      for (int i = 0; i < 220; ++i) {
        BenchClock::time_point t0 = BenchClock::now();
        EXPECT_TRUE(net::WriteAll(fd, b, sizeof b).ok());
        EXPECT_TRUE(net::ReadExact(fd, b, sizeof b).ok());
        if (i >= 20) rtt.push_back(SecondsSince(t0) * 1e3);
      }
      close(fd);
      return rtt;
    };
    std::vector<double> direct = measure(ConnectTo(target.port));
    std::vector<double> delayed = measure(ConnectTo(proxy->port()));
    echo.join();
    const double added = 2 * one_way_ms;
    double min_delayed = *std::min_element(delayed.begin(), delayed.end());
    double extra = Median(delayed) - Median(direct);
    EXPECT_GE(min_delayed, added) << "one-way " << one_way_ms << " ms";
    EXPECT_GE(extra, added * 0.98) << "one-way " << one_way_ms << " ms";
    EXPECT_LE(extra, added + 1.0) << "one-way " << one_way_ms << " ms";
  }
}

// The client half-closes first: the target sees its bytes then EOF, answers,
// closes, and the client sees the answer then EOF. The proxy then releases
// the connection.
TEST(DelayProxyTest, CloseByClientPropagates) {
  Listener target;
  auto proxy = StartProxy(target.address(), 0.5);
  ASSERT_NE(proxy, nullptr);
  int c = ConnectTo(proxy->port());
  int s = target.Accept();
  ASSERT_TRUE(net::WriteAll(c, "request", 7).ok());
  shutdown(c, SHUT_WR);
  EXPECT_EQ(ReadToEnd(s), "request");
  ASSERT_TRUE(net::WriteAll(s, "answer", 6).ok());
  close(s);
  EXPECT_EQ(ReadToEnd(c), "answer");
  close(c);
  EXPECT_TRUE(WaitFor([&] { return proxy->counters().finished == 1; }, 2000ms));
}

// The target closes first (with data in flight): the client gets all of it,
// then EOF; the client's own close then reaches the target.
TEST(DelayProxyTest, CloseByTargetPropagates) {
  Listener target;
  auto proxy = StartProxy(target.address(), 0.5);
  ASSERT_NE(proxy, nullptr);
  int c = ConnectTo(proxy->port());
  int s = target.Accept();
  ASSERT_TRUE(net::WriteAll(s, "goodbye", 7).ok());
  shutdown(s, SHUT_WR);
  EXPECT_EQ(ReadToEnd(c), "goodbye");
  close(c);
  EXPECT_EQ(ReadToEnd(s), "");  // EOF, not a hang
  close(s);
  EXPECT_TRUE(WaitFor([&] { return proxy->counters().finished == 1; }, 2000ms));
}

// A reset on one side ends the other side too, instead of leaving it hanging.
TEST(DelayProxyTest, ResetEndsBothSides) {
  Listener target;
  auto proxy = StartProxy(target.address(), 0.1);
  ASSERT_NE(proxy, nullptr);
  int c = ConnectTo(proxy->port());
  int s = target.Accept();
  ASSERT_GE(s, 0);
  // A byte relayed first proves the proxy's side of the connection is up; a
  // reset that raced its connect() would only test a failed connect.
  ASSERT_TRUE(net::WriteAll(c, "x", 1).ok());
  char x;
  ASSERT_TRUE(net::ReadExact(s, &x, 1).ok());
  linger l{1, 0};
  setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(s);  // RST
  ASSERT_TRUE(net::WaitReadable(c, 2000));
  char b;
  EXPECT_LE(recv(c, &b, 1, 0), 0);
  close(c);
  EXPECT_TRUE(WaitFor([&] { return proxy->counters().finished == 1; }, 2000ms));
}

TEST(DelayProxyTest, UnreachableTargetClosesClient) {
  uint16_t dead_port;
  {
    Listener gone;
    dead_port = gone.port;
  }
  auto proxy = StartProxy("127.0.0.1:" + std::to_string(dead_port), 0);
  ASSERT_NE(proxy, nullptr);
  int c = ConnectTo(proxy->port());
  ASSERT_TRUE(net::WaitReadable(c, 5000));
  EXPECT_EQ(ReadToEnd(c), "");
  close(c);
  EXPECT_EQ(proxy->counters().failed_connects, 1u);
}

// A target that does not read: the proxy holds at most its cap, the sender's
// writes stall (EAGAIN) instead of the proxy growing, and once the target
// reads, every byte arrives.
TEST(DelayProxyTest, SlowReaderDoesNotGrowTheProxy) {
  constexpr size_t kCap = 256u << 10;
  Listener target;
  auto proxy = StartProxy(target.address(), 0, kCap);
  ASSERT_NE(proxy, nullptr);
  int c = ConnectTo(proxy->port());
  int s = target.Accept();
  int small = 64 << 10;
  setsockopt(s, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
  std::vector<char> chunk(64 << 10, 'x');
  uint64_t sent = 0;
  int stalls = 0;
  while (stalls < 50 && sent < (1ull << 30)) {
    ssize_t n = send(c, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) {
      sent += n;
      stalls = 0;
    } else {
      ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << strerror(errno);
      ++stalls;
      std::this_thread::sleep_for(10ms);
    }
  }
  // Stalled well before 1 GiB: only kernel socket buffers and the cap hold data.
  EXPECT_LT(sent, 256ull << 20);
  DelayProxyCounters mid = proxy->counters();
  EXPECT_LE(mid.peak_buffered, kCap);
  EXPECT_GT(mid.peak_buffered, kCap / 2);  // it did fill up
  shutdown(c, SHUT_WR);
  EXPECT_EQ(ReadToEnd(s).size(), sent);
  EXPECT_LE(proxy->counters().peak_buffered, kCap);
  close(s);
  close(c);
}

// Sends `bytes` through the proxy both ways at once (client -> target and
// target -> client). Returns the seconds until each reader had every byte,
// {up, down}; checks on the way that no reader ever had more than `limit(t)`
// bytes at t seconds after the start.
std::pair<double, double> StreamBothWays(DelayProxy* proxy, Listener* target, size_t bytes,
                                         const std::function<double(double)>& limit) {
  int c = ConnectTo(proxy->port());
  int s = target->Accept();
  EXPECT_GE(s, 0);
  BenchClock::time_point t0 = BenchClock::now();
  auto send_all = [bytes](int fd) {
    std::vector<char> data(bytes, 'r');
    EXPECT_TRUE(net::WriteAll(fd, data.data(), data.size()).ok());
  };
  auto read_all = [&, bytes](int fd, double* seconds) {
    std::vector<char> buf(64 << 10);
    size_t got = 0;
    while (got < bytes) {
      ssize_t n = recv(fd, buf.data(), std::min(buf.size(), bytes - got), 0);
      if (n <= 0) break;
      got += n;
      double t = SecondsSince(t0);
      EXPECT_LE(static_cast<double>(got), limit(t)) << "at " << t << " s";
    }
    EXPECT_EQ(got, bytes);
    *seconds = SecondsSince(t0);
  };
  double up = 0, down = 0;
  std::thread writers[2] = {std::thread(send_all, c), std::thread(send_all, s)};
  std::thread reader([&] { read_all(s, &up); });
  read_all(c, &down);
  reader.join();
  for (std::thread& w : writers) w.join();
  close(c);
  close(s);
  return {up, down};
}

// At 80 Mbit/s, 2 MiB takes 0.21 s in each direction, both at once (each
// direction has its own cap), and no reader is ever ahead of the rate plus
// one burst (40 KB at this rate). The upper bound is loose for loaded CI.
TEST(DelayProxyTest, RateCapsEachDirection) {
  constexpr double kMbit = 80;
  constexpr size_t kBytes = 2u << 20;
  Listener target;
  auto proxy = StartProxy(target.address(), 0, 8u << 20, kMbit);
  ASSERT_NE(proxy, nullptr);
  const double bytes_per_s = kMbit * 1e6 / 8;
  auto [up, down] = StreamBothWays(proxy.get(), &target, kBytes, [&](double t) {
    return bytes_per_s * t + bytes_per_s * 0.004 + 1024;
  });
  const double ideal = kBytes / bytes_per_s;  // 0.21 s
  for (double seconds : {up, down}) {
    EXPECT_GE(seconds, ideal - 0.006);
    EXPECT_LT(seconds, 0.45);
  }
}

// Rate 0 is unlimited: 16 MiB each way, which 80 Mbit/s would take 1.7 s for.
TEST(DelayProxyTest, RateZeroIsUnlimited) {
  Listener target;
  auto proxy = StartProxy(target.address(), 0);
  ASSERT_NE(proxy, nullptr);
  auto [up, down] = StreamBothWays(proxy.get(), &target, 16u << 20, [](double) { return 1e18; });
  EXPECT_LT(up, 0.8);
  EXPECT_LT(down, 0.8);
}

}  // namespace
}  // namespace rgpu::bench
