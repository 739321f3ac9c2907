// Lays the children's results out as rgpu bench's table (bench/README.md
// explains each row). Pure: it reads results, it measures nothing.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "bench/report.h"

namespace rgpu::bench {

// Result sets by child, under these labels (plus DelayLabel ones).
inline constexpr char kNativeLabel[] = "native";        // real driver, local GPU
inline constexpr char kRgpuLabel[] = "rgpu";            // rgpu, direct to the server
inline constexpr char kRgpuCountLabel[] = "rgpu-count";  // rgpu through the counting proxy
inline constexpr char kRgpuTlsLabel[] = "rgpu-tls";      // rgpu through a TLS server (copies)
inline constexpr char kTcpLabel[] = "tcp";              // raw TCP, loopback
inline constexpr char kTorchNativeLabel[] = "torch-native";  // PyTorch on the local GPU
inline constexpr char kTorchRgpuLabel[] = "torch-rgpu";      // PyTorch through rgpu (+ DelayLabel ones)

// "rgpu+0.2ms-rtt", "tcp+1ms-rtt": a child run through a delay proxy with
// `one_way_ms` each way.
std::string DelayLabel(const std::string& side, double one_way_ms);

// The [7] compression children: rgpu with RGPU_COMPRESS=`codec` (off, lz4,
// zstd), through a proxy capped at `rate_mbit` ("rgpu-lz4@1000mbit"), or
// straight to the server when rate_mbit is 0 ("rgpu-lz4@direct").
std::string CompressionLabel(const std::string& codec, double rate_mbit);
// The codecs [7] compares with "off" on the capped link, and the one it
// also compares on the direct link; the patterns each child copies.
inline constexpr const char* kCompressionCodecs[] = {"lz4", "zstd"};
inline constexpr char kCompressionDirectCodec[] = "lz4";
inline constexpr char kCompressionPatterns[] = "relu,random";
inline constexpr char kCompressionDirectPatterns[] = "relu";

struct RowsContext {
  bool quick = false;
  // Why there are no native numbers, printed as the reference ("" when the
  // native child ran; its own errors are shown then). "n/a" alone for --sim.
  std::string native_missing;
  std::vector<double> one_way_delays_ms;  // the delayed sections, in order
  // False when rgpu was built without nvcc (no kernel to launch): the launch
  // rows then say so and are not expected.
  bool have_kernel = true;
  // The PyTorch children ran ([5] and the torch rows of [6]); their rgpu
  // numbers are expected when torch works locally (`have_torch`).
  bool torch = false;
  bool have_torch = false;
  // The TLS copies ran (a server started by the bench; not with --server).
  bool tls = false;
  // The server was given with --server: [7]'s uncapped rows are "direct"
  // (whatever that link is), not "loopback".
  bool server_given = false;
};

std::vector<Row> BuildRows(const std::map<std::string, Results>& results, const RowsContext& context);

// Every rgpu-side key that a complete run must have, by child label: the
// parent reports any that is missing or an error (and exits non-zero).
std::vector<std::pair<std::string, std::string>> ExpectedRgpuKeys(const RowsContext& context);

}  // namespace rgpu::bench
