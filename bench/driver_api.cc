#include "bench/driver_api.h"

#include <dlfcn.h>

namespace rgpu::bench {

// Two levels, so that the argument is macro-expanded first: cuMemAlloc
// becomes cuMemAlloc_v2 (cuda.h's mapping) before it is turned into a string.
#define RGPU_BENCH_STR2(x) #x
#define RGPU_BENCH_STR(x) RGPU_BENCH_STR2(x)

std::string DriverApi::ErrorName(CUresult r) const {
  const char* name = nullptr;
  if (cuGetErrorName != nullptr && cuGetErrorName(r, &name) == CUDA_SUCCESS && name != nullptr)
    return name;
  return "CUresult " + std::to_string(static_cast<int>(r));
}

Result<DriverApi> LoadDriverApi(const std::string& path) {
  DriverApi api;
  api.handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (api.handle == nullptr) {
    const char* err = dlerror();
    // dlerror() names the file itself.
    return Status::Invalid(std::string("dlopen ") + (err ? err : path + ": failed"));
  }
#define RGPU_BENCH_RESOLVE(name)                                                          \
  api.name = reinterpret_cast<decltype(api.name)>(dlsym(api.handle, RGPU_BENCH_STR(name))); \
  if (api.name == nullptr) return Status::Invalid(path + ": no symbol " RGPU_BENCH_STR(name));
  RGPU_BENCH_DRIVER_FUNCTIONS(RGPU_BENCH_RESOLVE)
#undef RGPU_BENCH_RESOLVE
  return api;
}

}  // namespace rgpu::bench
