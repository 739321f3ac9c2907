// Exported driver functions: virtual memory management (PyTorch's
// expandable segments use these), module loading from files, graph
// inspection. Allocation handles are named by the client; mapped ranges are
// registered as device memory so copies and pointer queries see them.
#include <cstdio>
#include <cstring>
#include <vector>

#include "client/api_common.h"
#include "client/unsupported.h"

using namespace rgpu::client;
namespace proto = rgpu::proto;

namespace {

bool ReadFile(const char* path, std::vector<uint8_t>* out) {
  FILE* f = fopen(path, "rb");
  if (f == nullptr) return false;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out->insert(out->end(), buf, buf + n);
  bool ok = !ferror(f);
  fclose(f);
  if (ok && !out->empty() && out->back() != 0) out->push_back(0);  // PTX text needs its NUL
  return ok;
}

bool ValidProp(const CUmemAllocationProp* p) {
  return p != nullptr && p->type == CU_MEM_ALLOCATION_TYPE_PINNED &&
         p->location.type == CU_MEM_LOCATION_TYPE_DEVICE;
}

}  // namespace

extern "C" {

CUresult cuModuleLoad(CUmodule* module, const char* fname) {
  if (module == nullptr || fname == nullptr) return CUDA_ERROR_INVALID_VALUE;
  std::vector<uint8_t> image;
  if (!ReadFile(fname, &image)) return CUDA_ERROR_FILE_NOT_FOUND;
  return cuModuleLoadData(module, image.data());  // the image is copied at load
}

CUresult cuLibraryLoadFromFile(CUlibrary* library, const char* fileName, CUjit_option* jo, void** jv,
                               unsigned int nj, CUlibraryOption* lo, void** lv, unsigned int nl) {
  if (library == nullptr || fileName == nullptr) return CUDA_ERROR_INVALID_VALUE;
  std::vector<uint8_t> image;
  if (!ReadFile(fileName, &image)) return CUDA_ERROR_FILE_NOT_FOUND;
  return cuLibraryLoadData(library, image.data(), jo, jv, nj, lo, lv, nl);
}

CUresult cuMemGetAllocationGranularity(size_t* granularity, const CUmemAllocationProp* prop,
                                       CUmemAllocationGranularity_flags option) {
  if (granularity == nullptr || !ValidProp(prop)) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  int dev = prop->location.id;
  if (dev < 0 || dev >= s->device_count()) return CUDA_ERROR_INVALID_DEVICE;
  auto key = std::make_tuple(dev, static_cast<int>(prop->type), static_cast<int>(option));
  {
    std::lock_guard<std::mutex> lock(s->vmm().mu);
    auto it = s->vmm().granularity.find(key);
    if (it != s->vmm().granularity.end()) {
      *granularity = it->second;
      return CUDA_SUCCESS;
    }
  }
  proto::MemGetGranularityRep rep;
  CUresult r = Sync(s, proto::CallId::kMemGetGranularity,
                    proto::MemGetGranularityReq{s->RemoteOrdinal(dev), static_cast<uint32_t>(prop->type),
                                                static_cast<uint32_t>(option)},
                    &rep);
  if (r != CUDA_SUCCESS) return r;
  std::lock_guard<std::mutex> lock(s->vmm().mu);
  s->vmm().granularity[key] = rep.granularity;
  *granularity = rep.granularity;
  return CUDA_SUCCESS;
}

CUresult cuMemAddressReserve(CUdeviceptr* ptr, size_t size, size_t alignment, CUdeviceptr addr,
                             unsigned long long flags) {
  if (ptr == nullptr || size == 0) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  proto::MemAddressReserveRep rep;
  CUresult r = Sync(s, proto::CallId::kMemAddressReserve,
                    proto::MemAddressReserveReq{c->id, size, alignment, addr, flags}, &rep);
  if (r == CUDA_SUCCESS) *ptr = rep.ptr;
  return r;
}

CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size) {
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  return Post(s, proto::CallId::kMemAddressFree, proto::MemAddressFreeReq{c->id, ptr, size});
}

CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size, const CUmemAllocationProp* prop,
                     unsigned long long flags) {
  if (handle == nullptr || size == 0 || !ValidProp(prop)) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  int dev = prop->location.id;
  if (dev < 0 || dev >= s->device_count()) return CUDA_ERROR_INVALID_DEVICE;
  // Shareable handle types ask that the memory *may* later be exported
  // (PyTorch's expandable segments ask for POSIX fds); the allocation itself
  // works the same. Exporting is what cannot cross the network, and
  // cuMemExportToShareableHandle says so when asked.
  uint64_t id = s->NewId();
  CUresult r = Sync(s, proto::CallId::kMemCreate,
                    proto::MemCreateReq{c->id, id, size, static_cast<uint32_t>(prop->type),
                                        static_cast<uint32_t>(prop->requestedHandleTypes),
                                        static_cast<uint32_t>(prop->location.type), s->RemoteOrdinal(dev),
                                        prop->allocFlags.compressionType, prop->allocFlags.gpuDirectRDMACapable,
                                        prop->allocFlags.usage, flags});
  if (r != CUDA_SUCCESS) return r;
  MemHandleObj h;
  h.size = size;
  h.prop = *prop;
  h.prop.win32HandleMetaData = nullptr;
  h.ctx = c;
  std::lock_guard<std::mutex> lock(s->vmm().mu);
  s->vmm().handles[id] = h;
  *handle = id;
  return CUDA_SUCCESS;
}

CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  RGPU_STATE_OR_RETURN(s);
  CtxObj* ctx = nullptr;
  {
    std::lock_guard<std::mutex> lock(s->vmm().mu);
    auto it = s->vmm().handles.find(handle);
    if (it == s->vmm().handles.end()) return CUDA_ERROR_INVALID_VALUE;
    if (--it->second.refs > 0) return CUDA_SUCCESS;
    ctx = it->second.ctx;
    s->vmm().handles.erase(it);
  }
  return Post(s, proto::CallId::kMemRelease, proto::MemReleaseReq{ctx->id, handle});
}

CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                  unsigned long long flags) {
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  {
    std::lock_guard<std::mutex> lock(s->vmm().mu);
    if (!s->vmm().handles.count(handle)) return CUDA_ERROR_INVALID_VALUE;
  }
  CUresult r = Sync(s, proto::CallId::kMemMap, proto::MemMapReq{c->id, ptr, size, offset, handle, flags});
  if (r != CUDA_SUCCESS) return r;
  s->AddAllocation(ptr, size, c);
  std::lock_guard<std::mutex> lock(s->vmm().mu);
  s->vmm().mappings[ptr] = {size, handle};
  return CUDA_SUCCESS;
}

CUresult cuMemUnmap(CUdeviceptr ptr, size_t size) {
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  {
    std::lock_guard<std::mutex> lock(s->vmm().mu);
    auto it = s->vmm().mappings.find(ptr);
    if (it == s->vmm().mappings.end() || it->second.first != size) return CUDA_ERROR_INVALID_VALUE;
    s->vmm().mappings.erase(it);
  }
  s->RemoveAllocation(ptr);
  return Post(s, proto::CallId::kMemUnmap, proto::MemUnmapReq{c->id, ptr, size});
}

CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc* desc, size_t count) {
  if (desc == nullptr || count == 0 || count > 64) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  std::vector<uint8_t> descs;
  proto::Writer w(&descs);
  w.U32(static_cast<uint32_t>(count));
  for (size_t i = 0; i < count; ++i) {
    int id = desc[i].location.id;
    if (desc[i].location.type == CU_MEM_LOCATION_TYPE_DEVICE) {
      if (id < 0 || id >= s->device_count()) return CUDA_ERROR_INVALID_DEVICE;
      id = s->RemoteOrdinal(id);
    }
    w.U32(desc[i].location.type);
    w.I32(id);
    w.U32(desc[i].flags);
  }
  return Sync(s, proto::CallId::kMemSetAccess, proto::MemSetAccessReq{c->id, ptr, size, descs});
}

CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle* handle, void* addr) {
  if (handle == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  auto a = reinterpret_cast<CUdeviceptr>(addr);
  std::lock_guard<std::mutex> lock(s->vmm().mu);
  auto it = s->vmm().mappings.upper_bound(a);
  if (it == s->vmm().mappings.begin()) return CUDA_ERROR_INVALID_VALUE;
  --it;
  if (a - it->first >= it->second.first) return CUDA_ERROR_INVALID_VALUE;
  auto h = s->vmm().handles.find(it->second.second);
  if (h == s->vmm().handles.end()) return CUDA_ERROR_INVALID_VALUE;
  ++h->second.refs;
  *handle = h->first;
  return CUDA_SUCCESS;
}

CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp* prop, CUmemGenericAllocationHandle handle) {
  if (prop == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  std::lock_guard<std::mutex> lock(s->vmm().mu);
  auto h = s->vmm().handles.find(handle);
  if (h == s->vmm().handles.end()) return CUDA_ERROR_INVALID_VALUE;
  *prop = h->second.prop;
  return CUDA_SUCCESS;
}

}  // extern "C"
