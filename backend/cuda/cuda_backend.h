// The `cuda` backend: the real NVIDIA driver, loaded with dlopen.
//
// Which library is loaded
//   options.driver_path when set; else $RGPU_REAL_LIBCUDA when set; else the
//   first of kDefaultDriverPaths that loads and is a real driver. An explicit
//   choice (option or environment) is the only candidate: when it fails, the
//   load fails; there is no silent fallback to another driver. The library is
//   opened with RTLD_NOW | RTLD_LOCAL and never closed (a driver does not
//   survive being unloaded).
//
// How rgpu's own client is told apart from a real driver
//   rgpu's client is also called libcuda.so.1 and exports the same names, so
//   a search through LD_LIBRARY_PATH (or a client already loaded into this
//   process) could find it. After dlopen, the file actually loaded (from the
//   link map, realpath'd) is refused as "rgpu's client library" when either
//   1. it is the same file (device and inode) as libcuda.so.1 in
//      $RGPU_CLIENT_LIB_DIR or in <dir of this executable>/../lib, where the
//      build and `rgpu run` put the client; or
//   2. its ELF file has a section named kClientMarkerSection. The client
//      defines one (a non-exported constant; see the comment below), so a
//      copy of the client anywhere is recognised without loading rules.
//   A library must also export cuGetProcAddress_v2 to count as a driver.
//
// How the table is filled
//   For each DriverTable entry, the driver's cuGetProcAddress_v2 is asked for
//   the entry's base name (the name without a _vN suffix) at the CUDA version
//   whose signature cuda.h gives that entry (CUDA_VERSION, with the few
//   exceptions in ProcAddressRequestFor), flags CU_GET_PROC_ADDRESS_DEFAULT.
//   When it has no answer (an older driver, the toolkit stub which answers
//   CUDA_ERROR_STUB_LIBRARY), the exact exported name is looked up with dlsym.
//   When both exist and differ, the exported symbol wins: its signature is the
//   one the table declares. Entries found neither way stay null; the worker
//   then answers CUDA_ERROR_NOT_SUPPORTED.
//
// Thread-safety: call once per worker process, before any other thread uses
// the table.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backend/driver_table.h"

namespace rgpu::backend {

// The section that marks rgpu's client library. The client defines, in one
// of its .cc files (hidden, not exported, kept by strip because it is
// allocated):
//   __attribute__((section(".rgpu_client"), used))
//   static const char kRgpuClientMarker[] = "rgpu client library";
inline constexpr char kClientMarkerSection[] = ".rgpu_client";

// Where a GPU host keeps the driver, in search order; then plain
// "libcuda.so.1" through the dynamic linker's own search.
inline constexpr const char* kDefaultDriverPaths[] = {
    "/usr/local/nvidia/lib64/libcuda.so.1",
    "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
    "/usr/lib64/libcuda.so.1",
    "libcuda.so.1",
};

// dlopens the driver (see above) and fills `table`. On failure the table is
// left empty and the Status names every path tried and why it was refused,
// e.g. "cuda: dlopen /x/libcuda.so.1: /x/libcuda.so.1: cannot open shared
// object file: No such file or directory".
Status LoadCudaBackend(const BackendOptions& options, DriverTable* table);

// --- Parts of the loader, exposed for tests ---------------------------------

// The candidates LoadCudaBackend tries when options.driver_path is empty.
std::vector<std::string> CudaDriverCandidates();

// What cuGetProcAddress_v2 is asked for to fill the entry named `entry`
// (an exported name such as "cuMemAlloc_v2").
struct ProcAddressRequest {
  std::string symbol;  // base name, e.g. "cuMemAlloc"
  int cuda_version;    // e.g. 13000
};
ProcAddressRequest ProcAddressRequestFor(std::string_view entry);

// True when the ELF file at `path` has a section named kClientMarkerSection.
// Any unreadable or malformed file answers false; nothing is trusted from it
// beyond bounds-checked reads.
bool HasClientMarkerSection(const std::string& path);

// OK unless the file at `path` (already realpath'd) is rgpu's client library
// by the rules above; then an Invalid status that says which rule matched.
Status CheckNotRgpuClient(const std::string& path);

}  // namespace rgpu::backend
