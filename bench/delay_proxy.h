// DelayProxy: a TCP relay that adds a fixed one-way delay and counts bytes.
//
// Every connection accepted on `listen` gets its own connection to `target`.
// Bytes read from one side are written to the other side `one_way_delay_ms`
// after they were read, in order (a round trip through the proxy therefore
// gains 2 x one_way_delay_ms). An end-of-stream (FIN) is delayed like data
// and forwarded as a half-close (shutdown(SHUT_WR)), so either side may close
// first and the other still sees every byte and then EOF. A reset or failed
// write on either side ends the whole connection: both sockets are shut down
// and the peers see EOF or a reset.
//
// Memory is bounded: each direction of each connection holds at most
// `max_buffered_bytes` read but not yet written. When that is full the proxy
// stops reading from the sender, whose writes then block on TCP flow control;
// a slow reader slows the writer down instead of growing the proxy.
// Throughput through one direction is therefore at most
// max_buffered_bytes / one_way_delay.
//
// With one_way_delay_ms == 0 it is a plain counting relay (rgpu bench uses it
// to see whether a call loop sends anything at all).
//
// Bandwidth: with rate_mbit > 0 each direction of each connection is capped
// at rate_mbit x 1e6 bit/s, like a link of that speed. The writer paces
// itself with a token bucket whose burst is at most 4 ms of traffic (between
// 1500 bytes and 256 KiB), so no window longer than a few ms carries more
// than the rate allows; it sleeps on the precise clock between bursts (no
// spinning). Pacing starts when a chunk is due, so a chunk that waited for
// the link leaves later than its delay: the two add up as on a real link
// (propagation delay plus serialisation). Connections are paced separately;
// the cap is not shared between them.
//
// Threads: one accept thread, and per connection one reader and one writer
// thread per direction (4). Writer threads set their timer slack to 1 ns so
// that sub-millisecond delays are kept to within a few microseconds on an
// idle machine. All public methods are thread-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"

namespace rgpu::bench {

struct DelayProxyOptions {
  std::string listen = "127.0.0.1:0";  // HOST:PORT; port 0 picks a free port
  std::string target;                  // HOST:PORT connected to for each client
  double one_way_delay_ms = 0;         // added to each direction; 0..60000
  size_t max_buffered_bytes = 8u << 20;  // per direction per connection; >= 4096
  // Bandwidth cap per direction per connection, in megabits per second
  // (1e6 bit/s); 0 = unlimited, else 1..1e6 (1 Tbit/s).
  double rate_mbit = 0;
  int connect_timeout_ms = 5000;
};

// Totals since Start(); bytes are counted when the proxy reads them.
struct DelayProxyCounters {
  uint64_t bytes_up = 0;       // client -> target
  uint64_t bytes_down = 0;     // target -> client
  uint64_t connections = 0;    // accepted and connected to the target
  uint64_t failed_connects = 0;  // accepted, but the target could not be reached
  uint64_t finished = 0;       // connections ended both ways and released
  // Most one direction held at once: bytes read but not yet written, plus 64
  // per queued read (bookkeeping). Never above max_buffered_bytes.
  uint64_t peak_buffered = 0;
};

class DelayProxy {
 public:
  // Binds `listen` and starts the accept thread. Fails (and starts nothing) on
  // a bad address, an out-of-range option, or a bind error; the message names
  // the option or the address.
  static Result<std::unique_ptr<DelayProxy>> Start(const DelayProxyOptions& options);
  ~DelayProxy();  // Stop()
  DelayProxy(const DelayProxy&) = delete;
  DelayProxy& operator=(const DelayProxy&) = delete;

  uint16_t port() const { return port_; }
  // "127.0.0.1:PORT" (the listen host with the bound port).
  std::string address() const;
  DelayProxyCounters counters() const;
  // Closes the listening socket, ends every connection (both sockets shut
  // down) and joins all threads. Idempotent. Returns within about the delay
  // plus 100 ms.
  void Stop();

 private:
  struct Conn;
  struct Direction;
  explicit DelayProxy(DelayProxyOptions options);  // in the .cc: Conn is incomplete here
  void AcceptLoop();
  void StartConn(int client_fd);
  void ReapFinished(bool all);
  void ReadLoop(Conn* c, Direction* d);
  void WriteLoop(Conn* c, Direction* d);

  const DelayProxyOptions options_;  // constant after construction
  std::string listen_host_;
  int listen_fd_ = -1;
  int wake_fds_[2] = {-1, -1};  // Stop() writes to [1] to wake the accept loop
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::atomic<bool> stopping_{false};
  std::once_flag stop_once_;

  std::atomic<uint64_t> bytes_up_{0}, bytes_down_{0}, connections_{0}, failed_connects_{0};
  std::atomic<uint64_t> finished_{0};
  std::atomic<uint64_t> peak_buffered_{0};

  std::mutex conns_mu_;
  std::list<std::unique_ptr<Conn>> conns_;  // GUARDED_BY(conns_mu_)
};

}  // namespace rgpu::bench
