// The `cuda` backend: dlopen the real driver, fill the DriverTable through its
// cuGetProcAddress_v2. The rules are in cuda_backend.h.
#include "backend/cuda/cuda_backend.h"

#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stdlib.h>

#include <cctype>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "common/log.h"

namespace rgpu::backend {
namespace {

using GetProcAddressFn = CUresult (*)(const char* symbol, void** pfn, int cuda_version,
                                      cuuint64_t flags, CUdriverProcAddressQueryResult* status);

// The table's signatures are those of the cuda.h it is compiled with, so the
// driver is asked for the functions of that CUDA version.
constexpr int kTableCudaVersion = CUDA_VERSION;

// Names that cuda.h 13.0 declares with their old signature (no #define to a
// _vN) while the driver answers the base name at 13000 with a newer _vN of
// another signature: they are asked for at the last version that answers the
// name itself. From data/driver/procaddress-580.159.txt, e.g.
// "cuCtxSynchronize 0 2000 12990 cuCtxSynchronize" and
// "cuCtxSynchronize 0 13000 13000 cuCtxSynchronize_v2" (which takes a CUcontext).
// cuda_backend_test's RequestsResolveToTheEntryOnRecordedDriver fails for a
// new DriverTable entry that needs a row here.
struct VersionOverride {
  const char* entry;
  int cuda_version;
};
constexpr VersionOverride kVersionOverrides[] = {
    {"cuCtxSynchronize", 12090},  // 13000: cuCtxSynchronize_v2(CUcontext)
    {"cuCtxGetDevice", 12090},    // 13000: cuCtxGetDevice_v2(CUdevice*, CUcontext)
    {"cuStreamGetCtx", 12040},    // 12050+: cuStreamGetCtx_v2(CUstream, CUcontext*, CUgreenCtx*)
};

// Counts of how the table was filled, for the log line after loading.
struct FillStats {
  int by_proc_address = 0;
  int by_dlsym = 0;
  std::string missing;  // comma-separated entry names
  int missing_count = 0;
  CUresult proc_address_error = CUDA_SUCCESS;  // the first error seen, if any
};

// Looks up one entry: cuGetProcAddress_v2 first, dlsym of the exact name as
// the fallback and as the authority on the signature (see cuda_backend.h).
void* Resolve(void* handle, GetProcAddressFn get_proc, const char* entry, FillStats* stats) {
  ProcAddressRequest req = ProcAddressRequestFor(entry);
  void* from_proc = nullptr;
  CUdriverProcAddressQueryResult query = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  CUresult r = get_proc(req.symbol.c_str(), &from_proc, req.cuda_version,
                        CU_GET_PROC_ADDRESS_DEFAULT, &query);
  // The toolkit stub answers CUDA_ERROR_STUB_LIBRARY and leaves the pointer
  // untouched: only a success with a found symbol counts.
  if (r != CUDA_SUCCESS || query != CU_GET_PROC_ADDRESS_SUCCESS) {
    if (r != CUDA_SUCCESS && stats->proc_address_error == CUDA_SUCCESS) {
      stats->proc_address_error = r;
    }
    from_proc = nullptr;
  }
  dlerror();  // clear, so a null from dlsym is not confused with an old error
  void* exported = dlsym(handle, entry);

  if (from_proc != nullptr && (exported == nullptr || exported == from_proc)) {
    ++stats->by_proc_address;
    return from_proc;
  }
  if (exported != nullptr) {
    if (from_proc != nullptr) {
      LogOnce(LogLevel::kInfo, std::string("cuda-backend-mismatch:") + entry,
              "cuda backend: cuGetProcAddress(%s, %d) is not the exported %s; using the export",
              req.symbol.c_str(), req.cuda_version, entry);
    }
    ++stats->by_dlsym;
    return exported;
  }
  if (!stats->missing.empty()) stats->missing += ", ";
  stats->missing += entry;
  ++stats->missing_count;
  return nullptr;
}

void FillTable(void* handle, GetProcAddressFn get_proc, DriverTable* table, FillStats* stats) {
#define RGPU_FILL_ENTRY(name) \
  table->name = reinterpret_cast<decltype(table->name)>(Resolve(handle, get_proc, #name, stats));
  RGPU_DRIVER_FUNCTIONS(RGPU_FILL_ENTRY)
#undef RGPU_FILL_ENTRY
}

std::string DlError() {
  const char* e = dlerror();
  return e != nullptr ? std::string(e) : std::string("unknown dlerror");
}

// The file the dynamic linker actually loaded for `handle`, realpath'd. For a
// bare soname this is where the search found it, or an already-loaded copy.
std::string LoadedFile(void* handle, const std::string& requested) {
  struct link_map* map = nullptr;
  std::string name = requested;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr && map->l_name != nullptr &&
      map->l_name[0] != 0) {
    name = map->l_name;
  }
  char buf[PATH_MAX];
  return ::realpath(name.c_str(), buf) != nullptr ? std::string(buf) : name;
}

// Loads one candidate. On success the handle stays open for the life of the
// process; on failure it is closed and the Status names the path.
Status LoadFrom(const std::string& path, DriverTable* table) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return Status::Invalid("dlopen " + path + ": " + DlError());

  const std::string file = LoadedFile(handle, path);
  const std::string shown = file == path ? path : path + " (" + file + ")";
  if (Status s = CheckNotRgpuClient(file); !s.ok()) {
    dlclose(handle);
    return s;
  }
  dlerror();
  auto get_proc = reinterpret_cast<GetProcAddressFn>(dlsym(handle, "cuGetProcAddress_v2"));
  if (get_proc == nullptr) {
    std::string why = DlError();
    dlclose(handle);
    return Status::Invalid(shown + " is not a CUDA driver: no cuGetProcAddress_v2 (" + why + ")");
  }

  FillStats stats;
  FillTable(handle, get_proc, table, &stats);
  if (stats.proc_address_error == CUDA_ERROR_STUB_LIBRARY) {
    RGPU_LOG_WARN("cuda backend: %s is the CUDA toolkit's stub library; every call will fail "
                  "with CUDA_ERROR_STUB_LIBRARY",
                  shown.c_str());
  }
  RGPU_LOG_INFO("cuda backend: %s: %d functions from cuGetProcAddress, %d from dlsym, %d missing",
                shown.c_str(), stats.by_proc_address, stats.by_dlsym, stats.missing_count);
  if (stats.missing_count > 0) {
    RGPU_LOG_INFO("cuda backend: not in this driver (calls answer CUDA_ERROR_NOT_SUPPORTED): %s",
                  stats.missing.c_str());
  }
  return Status();
}

}  // namespace

ProcAddressRequest ProcAddressRequestFor(std::string_view entry) {
  ProcAddressRequest req{std::string(entry), kTableCudaVersion};
  // Strip a trailing _vN (N = one or more digits): cuMemAlloc_v2 -> cuMemAlloc.
  size_t pos = entry.rfind("_v");
  if (pos != std::string_view::npos && pos + 2 < entry.size()) {
    bool digits = true;
    for (size_t i = pos + 2; i < entry.size(); ++i) {
      digits = digits && isdigit(static_cast<unsigned char>(entry[i]));
    }
    if (digits) req.symbol = std::string(entry.substr(0, pos));
  }
  for (const VersionOverride& o : kVersionOverrides) {
    if (entry == o.entry) req.cuda_version = o.cuda_version;
  }
  return req;
}

std::vector<std::string> CudaDriverCandidates() {
  if (const char* env = getenv("RGPU_REAL_LIBCUDA"); env != nullptr && *env != 0) {
    return {env};  // an explicit choice: no fallback (cuda_backend.h)
  }
  return {std::begin(kDefaultDriverPaths), std::end(kDefaultDriverPaths)};
}

Status LoadCudaBackend(const BackendOptions& options, DriverTable* table) {
  *table = DriverTable{};
  if (!options.driver_path.empty()) {
    Status s = LoadFrom(options.driver_path, table);
    if (!s.ok()) *table = DriverTable{};
    return std::move(s).With("cuda");
  }
  const std::vector<std::string> candidates = CudaDriverCandidates();
  std::string tried;
  for (const std::string& path : candidates) {
    Status s = LoadFrom(path, table);
    if (s.ok()) return s;
    *table = DriverTable{};
    RGPU_LOG_DEBUG("cuda backend: skipping %s", s.message().c_str());
    tried += "\n  " + s.message();
  }
  const char* hint = candidates.size() == 1
                         ? "(RGPU_REAL_LIBCUDA names the only candidate)"
                         : "(set RGPU_REAL_LIBCUDA to the real libcuda.so.1)";
  return Status::Unsupported("cuda: no NVIDIA driver found " + std::string(hint) + "; tried:" +
                             tried);
}

}  // namespace rgpu::backend
