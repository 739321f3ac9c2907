// rgpu-delay-proxy: a TCP relay that adds a one-way delay to each direction,
// and optionally caps its bandwidth, to see how rgpu behaves on a longer or
// slower link (see bench/delay_proxy.h).
//
//   rgpu-delay-proxy --listen 127.0.0.1:7071 --target 127.0.0.1:7070 --delay-ms 0.1
//   RGPU_SERVER=127.0.0.1:7071 rgpu run -- ./app     # +0.2 ms round trip
//   rgpu-delay-proxy --target 127.0.0.1:7070 --rate-mbit 1000   # a 1 Gbit/s link
//
// Runs until SIGINT or SIGTERM, then prints the bytes it relayed. Exit status
// 2 on a bad option or when it cannot listen.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "bench/delay_proxy.h"

int main(int argc, char** argv) {
  CLI::App app{"rgpu-delay-proxy: TCP relay adding a fixed one-way delay (half the RTT) per direction"};
  rgpu::bench::DelayProxyOptions opt;
  double max_buffer_kib = static_cast<double>(opt.max_buffered_bytes) / 1024;
  app.add_option("--listen", opt.listen, "HOST:PORT to accept on (port 0: pick one)")
      ->capture_default_str();
  app.add_option("--target", opt.target, "HOST:PORT to relay to")->required();
  app.add_option("--delay-ms", opt.one_way_delay_ms,
                 "one-way delay added to each direction (RTT grows by twice this)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 60000.0));
  app.add_option("--rate-mbit", opt.rate_mbit,
                 "bandwidth cap per direction per connection in Mbit/s (1e6 bit/s); 0: "
                 "unlimited, else 1..1000000")
      ->capture_default_str();  // DelayProxy::Start checks the range and says why
  app.add_option("--max-buffer-kib", max_buffer_kib,
                 "most bytes held per direction per connection; bounds throughput to "
                 "buffer / delay")
      ->capture_default_str()
      ->check(CLI::Range(4.0, 4194304.0));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  opt.max_buffered_bytes = static_cast<size_t>(max_buffer_kib * 1024);

  // Block the stop signals in every thread (the proxy's threads inherit this
  // mask) and take them synchronously below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto proxy = rgpu::bench::DelayProxy::Start(opt);
  if (!proxy.ok()) {
    fprintf(stderr, "rgpu-delay-proxy: %s\n", proxy.status().message().c_str());
    return 2;
  }
  char rate[64] = "unlimited";
  if (opt.rate_mbit > 0) snprintf(rate, sizeof rate, "%g Mbit/s", opt.rate_mbit);
  fprintf(stderr,
          "rgpu-delay-proxy: listening on %s (port %u) -> %s, one-way delay %g ms, rate %s\n",
          proxy.value()->address().c_str(), proxy.value()->port(), opt.target.c_str(),
          opt.one_way_delay_ms, rate);
  int sig = 0;
  sigwait(&stop, &sig);
  proxy.value()->Stop();
  rgpu::bench::DelayProxyCounters c = proxy.value()->counters();
  fprintf(stderr,
          "rgpu-delay-proxy: stopped; %llu connections (%llu failed), %llu bytes up, %llu "
          "bytes down\n",
          static_cast<unsigned long long>(c.connections),
          static_cast<unsigned long long>(c.failed_connects),
          static_cast<unsigned long long>(c.bytes_up),
          static_cast<unsigned long long>(c.bytes_down));
  return 0;
}
