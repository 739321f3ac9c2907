// `rgpu bench`: measures rgpu side by side with what the hardware and the
// link allow, and prints `measure | rgpu | reference | ratio` (bench/README.md).
//
//   rgpu bench [--server HOST:PORT] [--native-driver PATH] [--quick] [--json FILE] [--sim]
//
// Server: --server uses a running rgpu server; --sim starts
// `rgpu-server --backend sim` on a free loopback port (no native reference
// then: "n/a"); with neither it starts `rgpu-server --backend cuda` (the GPU
// host case). The started server is stopped on exit, also on failure.
// rgpu-server is taken from the rgpu binary's directory, else `rgpu server`.
//
// References: the native driver is dlopened from --native-driver, else
// $RGPU_REAL_LIBCUDA, else kDefaultNativeDriver; rgpu's client from
// ClientLibDir()/libcuda.so.1 (cli/run_command.h). Each side is measured in
// a child process of its own (`rgpu bench --child ...`, see bench/child.h).
//
// Exit status: 0 when every rgpu measure produced a number; 1 when one did
// not (the table shows which, and why, and a list follows it); 2 on bad
// options or when the server or the client library cannot be found/started.
// A missing native driver is not a failure (its references print "n/a").
#pragma once

#include <string>

#include "bench/child.h"

namespace CLI {
class App;
}

namespace rgpu::cli {

inline constexpr char kDefaultNativeDriver[] = "/usr/local/nvidia/lib64/libcuda.so.1";

struct BenchOptions {
  std::string server;         // HOST:PORT; empty: start a server
  std::string native_driver;  // empty: $RGPU_REAL_LIBCUDA, else kDefaultNativeDriver
  bool quick = false;         // small sizes: the whole run < 20 s on 2 cores (CI smoke test)
  std::string json;           // also write the table and raw results here
  bool sim = false;
  bool no_torch = false;     // skip the PyTorch measures ([5] and torch rows of [6])
  bool torch_first = false;  // the PyTorch measures before the others
  double deadline_s = 0;     // > 0: start no measurement after this many seconds
  bench::ChildOptions child;  // internal: set by --child (the parent re-executes itself)
};

// Adds bench's options (and the hidden --child ones) to `bench`.
void AddBenchOptions(CLI::App* bench, BenchOptions* options);

// Runs the bench, or the child measurement when options.child.mode is set.
// Writes the table to stdout and progress and problems to stderr.
int RunBench(BenchOptions options);

}  // namespace rgpu::cli
