// Exported driver functions: modules, libraries, functions, kernels and their
// attributes. Images are recorded at load and uploaded at first use
// (DESIGN.md rule 7): libtorch registers far more than it ever launches.
// Function facts (parameter layout, attributes) come back once per function
// and are answered locally from then on.
#include <cstring>

#include "client/api_common.h"
#include "client/managed_memory.h"
#include "client/unsupported.h"
#include "image/image.h"

using namespace rgpu::client;
namespace proto = rgpu::proto;
namespace image = rgpu::image;

namespace {

uint64_t Fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// The bytes of an image given as a bare pointer; a fatbin wrapper is
// replaced by the fatbin it points to (its pointer means nothing remotely).
CUresult CopyImage(const void* img, std::vector<uint8_t>* out) {
  if (img == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const void* data = img;
  if (image::DetectImageKind(img) == image::ImageKind::kFatbinWrapper) {
    rgpu::Result<image::Bytes> b = image::FatbinWrapperData(img);
    if (!b.ok()) {
      RGPU_LOG_WARN("module image: %s", b.status().message().c_str());
      return CUDA_ERROR_INVALID_IMAGE;
    }
    out->assign(reinterpret_cast<const uint8_t*>(b->data()),
                reinterpret_cast<const uint8_t*>(b->data()) + b->size());
    return CUDA_SUCCESS;
  }
  rgpu::Result<uint64_t> size = image::ImageSize(data);
  if (!size.ok()) {
    RGPU_LOG_WARN("module image: %s", size.status().message().c_str());
    return CUDA_ERROR_INVALID_IMAGE;
  }
  out->assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + *size);
  return CUDA_SUCCESS;
}

CUresult Load(ClientState* s, const void* img, bool library, ModuleObj** out) {
  RGPU_LOG_DEBUG("%s(%p, kind %s)", library ? "cuLibraryLoadData" : "cuModuleLoadData", img,
                 image::ImageKindName(image::DetectImageKind(img)));
  CtxObj* c = s->Current();
  if (c == nullptr) {
    if (!library) return CUDA_ERROR_INVALID_CONTEXT;
    // Libraries are context-independent; the worker loads them in the
    // primary context of device 0, as the driver does lazily.
    CUcontext pc = nullptr;
    CUresult r = cuDevicePrimaryCtxRetain(&pc, 0);
    if (r != CUDA_SUCCESS) return r;
    c = reinterpret_cast<CtxObj*>(pc);
  }
  auto m = std::make_unique<ModuleObj>();
  CUresult r = CopyImage(img, &m->image);
  if (r != CUDA_SUCCESS) return r;
  m->id = s->NewId();
  m->ctx = c;
  m->is_library = library;
  m->hash = Fnv1a(m->image.data(), m->image.size());
  ModuleObj* raw = s->AddModule(std::move(m));
  if (getenv("CUDA_MODULE_LOADING") && strcmp(getenv("CUDA_MODULE_LOADING"), "EAGER") == 0) {
    // EAGER: load now, so that a bad image fails here as it would locally.
    r = Sync(s, proto::CallId::kModuleLoad,
             proto::ModuleLoadReq{c->id, raw->id, static_cast<uint8_t>(library), raw->hash, raw->image});
    if (r != CUDA_SUCCESS) {
      s->DropModule(raw);
      return r;
    }
    raw->loaded = true;
  }
  *out = raw;
  return CUDA_SUCCESS;
}

// Uploads the image the first time something inside it is needed.
CUresult EnsureLoaded(ClientState* s, ModuleObj* m) {
  if (m->loaded) return CUDA_SUCCESS;
  CUresult r = Sync(s, proto::CallId::kModuleLoad,
                    proto::ModuleLoadReq{m->ctx->id, m->id, static_cast<uint8_t>(m->is_library),
                                         m->hash, m->image});
  if (r == CUDA_SUCCESS) m->loaded = true;
  return r;
}

CUresult Resolve(ClientState* s, ModuleObj* m, const char* name, bool kernel, FuncObj** out) {
  if (name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_LOG_DEBUG("resolve %s in module %llu", name, (unsigned long long)m->id);
  CUresult r = EnsureLoaded(s, m);
  if (r != CUDA_SUCCESS) return r;
  if (FuncObj* known = s->FindFuncByName(m, name, kernel)) {
    *out = known;
    return CUDA_SUCCESS;
  }
  auto f = std::make_unique<FuncObj>();
  f->id = s->NewId();
  f->module = m;
  f->is_kernel = kernel;
  f->name = name;
  proto::GetFunctionRep rep;
  r = Sync(s, proto::CallId::kGetFunction, proto::GetFunctionReq{m->ctx->id, m->id, f->id, f->name}, &rep);
  if (r != CUDA_SUCCESS) return r;
  proto::Reader pr(rep.params);
  uint32_t n = 0;
  if (!pr.U32(&n).ok() || n > 4096) return CUDA_ERROR_UNKNOWN;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t off = 0, size = 0;
    if (!pr.U32(&off).ok() || !pr.U32(&size).ok()) return CUDA_ERROR_UNKNOWN;
    f->params.emplace_back(off, size);
    f->params_bytes = std::max(f->params_bytes, off + size);
  }
  proto::Reader ar(rep.attrs);
  while (ar.remaining() >= 4) {
    int32_t v = 0;
    (void)ar.I32(&v);
    f->attrs.push_back(v);
  }
  f->resolved = true;
  *out = s->AddFunc(std::move(f));
  return CUDA_SUCCESS;
}

// A module global (cuModuleGetGlobal), or with `managed` a __managed__
// variable (cuLibraryGetManaged): the worker's driver holds it in its
// process, and the client mirrors it at the same address
// (managed_memory.h) so that host code's accesses through the pointer work.
CUresult GetGlobal(ClientState* s, ModuleObj* m, const char* name, CUdeviceptr* dptr, size_t* bytes,
                   bool managed = false) {
  if (name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUresult r = EnsureLoaded(s, m);
  if (r != CUDA_SUCCESS) return r;
  CUdeviceptr p = 0;
  uint64_t size = 0;
  if (managed) {
    proto::LibraryGetManagedRep rep;
    r = Sync(s, proto::CallId::kLibraryGetManaged, proto::LibraryGetManagedReq{m->ctx->id, m->id, name}, &rep);
    if (r == CUDA_SUCCESS) r = AdoptManagedGlobal(m->ctx, m->id, rep.dptr, rep.size);
    p = rep.dptr;
    size = rep.size;
  } else {
    proto::GetGlobalRep rep;
    r = Sync(s, proto::CallId::kGetGlobal, proto::GetGlobalReq{m->ctx->id, m->id, name}, &rep);
    p = rep.dptr;
    size = rep.size;
  }
  if (r != CUDA_SUCCESS) return r;
  s->AddAllocation(p, size, m->ctx);
  if (dptr) *dptr = p;
  if (bytes) *bytes = size;
  return CUDA_SUCCESS;
}

// cuModuleGetFunctionCount / cuLibraryGetKernelCount ("misc").
CUresult FunctionCount(ClientState* s, ModuleObj* m, unsigned* count) {
  if (count == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUresult r = EnsureLoaded(s, m);
  if (r != CUDA_SUCCESS) return r;
  proto::ModuleFunctionCountRep rep;
  r = Sync(s, proto::CallId::kModuleFunctionCount, proto::ModuleFunctionCountReq{m->ctx->id, m->id}, &rep);
  if (r == CUDA_SUCCESS) *count = rep.count;
  return r;
}

// cuModuleEnumerateFunctions / cuLibraryEnumerateKernels: the worker names
// the functions in the driver's order; each is resolved to a client handle
// as cuModuleGetFunction would.
CUresult EnumerateFunctions(ClientState* s, ModuleObj* m, bool kernels, unsigned max, void** out) {
  if (out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (max == 0) return CUDA_SUCCESS;
  CUresult r = EnsureLoaded(s, m);
  if (r != CUDA_SUCCESS) return r;
  proto::ModuleFunctionNamesRep rep;
  r = Sync(s, proto::CallId::kModuleFunctionNames, proto::ModuleFunctionNamesReq{m->ctx->id, m->id, max}, &rep);
  if (r != CUDA_SUCCESS) return r;
  std::vector<std::string> names;
  size_t start = 0;
  for (size_t i = 0; i < rep.names.size(); ++i) {
    if (rep.names[i] != 0) continue;
    names.emplace_back(reinterpret_cast<const char*>(rep.names.data()) + start, i - start);
    start = i + 1;
  }
  if (names.size() > max) return CUDA_ERROR_UNKNOWN;
  for (size_t i = 0; i < names.size(); ++i) {
    FuncObj* f = nullptr;
    r = Resolve(s, m, names[i].c_str(), kernels, &f);
    if (r != CUDA_SUCCESS) return r;
    out[i] = f;
  }
  return CUDA_SUCCESS;
}

CUresult Unload(ClientState* s, ModuleObj* m) {
  ForgetManagedGlobals(m->id);
  CUresult r = CUDA_SUCCESS;
  if (m->loaded) r = Post(s, proto::CallId::kModuleUnload, proto::ModuleUnloadReq{m->ctx->id, m->id});
  s->DropModule(m);
  return r;
}

}  // namespace

extern "C" {

CUresult cuModuleLoadData(CUmodule* module, const void* img) {
  if (module == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  ModuleObj* m = nullptr;
  CUresult r = Load(s, img, false, &m);
  if (r == CUDA_SUCCESS) *module = reinterpret_cast<CUmodule>(m);
  return r;
}

CUresult cuModuleLoadDataEx(CUmodule* module, const void* img, unsigned int, CUjit_option*, void**) {
  // JIT options tune PTX compilation on the worker; the defaults serve.
  return cuModuleLoadData(module, img);
}

CUresult cuModuleLoadFatBinary(CUmodule* module, const void* fatCubin) {
  return cuModuleLoadData(module, fatCubin);
}

CUresult cuModuleUnload(CUmodule hmod) {
  RGPU_STATE_OR_RETURN(s);
  ModuleObj* m = s->FindModule(hmod);
  if (m == nullptr || m->is_library) return CUDA_ERROR_INVALID_HANDLE;
  return Unload(s, m);
}

CUresult cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name) {
  if (hfunc == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  ModuleObj* m = s->FindModule(hmod);
  if (m == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  FuncObj* f = nullptr;
  CUresult r = Resolve(s, m, name, m->is_library, &f);
  if (r == CUDA_SUCCESS) *hfunc = reinterpret_cast<CUfunction>(f);
  return r;
}

CUresult cuModuleGetGlobal_v2(CUdeviceptr* dptr, size_t* bytes, CUmodule hmod, const char* name) {
  RGPU_STATE_OR_RETURN(s);
  ModuleObj* m = s->FindModule(hmod);
  if (m == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  return GetGlobal(s, m, name, dptr, bytes);
}

CUresult cuModuleGetFunctionCount(unsigned int* count, CUmodule mod) {
  RGPU_STATE_OR_RETURN(s);
  ModuleObj* m = s->FindModule(mod);
  if (m == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  return FunctionCount(s, m, count);
}

CUresult cuModuleEnumerateFunctions(CUfunction* functions, unsigned int numFunctions, CUmodule mod) {
  RGPU_STATE_OR_RETURN(s);
  ModuleObj* m = s->FindModule(mod);
  if (m == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  return EnumerateFunctions(s, m, m->is_library, numFunctions, reinterpret_cast<void**>(functions));
}

CUresult cuLibraryGetKernelCount(unsigned int* count, CUlibrary lib) {
  RGPU_STATE_OR_RETURN(s);
  ModuleObj* m = s->FindModule(lib);
  if (m == nullptr || !m->is_library) return CUDA_ERROR_INVALID_HANDLE;
  return FunctionCount(s, m, count);
}

CUresult cuLibraryEnumerateKernels(CUkernel* kernels, unsigned int numKernels, CUlibrary lib) {
  RGPU_STATE_OR_RETURN(s);
  ModuleObj* m = s->FindModule(lib);
  if (m == nullptr || !m->is_library) return CUDA_ERROR_INVALID_HANDLE;
  return EnumerateFunctions(s, m, true, numKernels, reinterpret_cast<void**>(kernels));
}

CUresult cuModuleGetLoadingMode(CUmoduleLoadingMode* mode) {
  RGPU_RETURN_IF_DEINITIALIZED();
  if (mode == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const char* env = getenv("CUDA_MODULE_LOADING");
  *mode = env && strcmp(env, "EAGER") == 0 ? CU_MODULE_EAGER_LOADING : CU_MODULE_LAZY_LOADING;
  return CUDA_SUCCESS;
}

CUresult cuLibraryLoadData(CUlibrary* library, const void* code, CUjit_option*, void**, unsigned int,
                           CUlibraryOption*, void**, unsigned int) {
  // Library options (BINARY_IS_PRESERVED, the host function table) describe
  // this process's memory; the worker gets its own copy of the image.
  if (library == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  ModuleObj* m = nullptr;
  CUresult r = Load(s, code, true, &m);
  if (r == CUDA_SUCCESS) *library = reinterpret_cast<CUlibrary>(m);
  return r;
}

CUresult cuLibraryUnload(CUlibrary library) {
  RGPU_STATE_OR_RETURN(s);
  ModuleObj* m = s->FindModule(library);
  if (m == nullptr || !m->is_library) return CUDA_ERROR_INVALID_HANDLE;
  return Unload(s, m);
}

CUresult cuLibraryGetKernel(CUkernel* pKernel, CUlibrary library, const char* name) {
  if (pKernel == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  ModuleObj* m = s->FindModule(library);
  if (m == nullptr || !m->is_library) return CUDA_ERROR_INVALID_HANDLE;
  FuncObj* f = nullptr;
  CUresult r = Resolve(s, m, name, true, &f);
  if (r == CUDA_SUCCESS) *pKernel = reinterpret_cast<CUkernel>(f);
  return r;
}

CUresult cuLibraryGetModule(CUmodule* pMod, CUlibrary library) {
  RGPU_LOG_DEBUG("cuLibraryGetModule");
  if (pMod == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  ModuleObj* m = s->FindModule(library);
  if (m == nullptr || !m->is_library) return CUDA_ERROR_INVALID_HANDLE;
  *pMod = reinterpret_cast<CUmodule>(m);  // lookups by name work on either
  return CUDA_SUCCESS;
}

CUresult cuLibraryGetGlobal(CUdeviceptr* dptr, size_t* bytes, CUlibrary library, const char* name) {
  RGPU_STATE_OR_RETURN(s);
  ModuleObj* m = s->FindModule(library);
  if (m == nullptr || !m->is_library) return CUDA_ERROR_INVALID_HANDLE;
  return GetGlobal(s, m, name, dptr, bytes);
}

// __managed__ variables (cudart asks for each and hands the program the
// address): see GetGlobal.
CUresult cuLibraryGetManaged(CUdeviceptr* dptr, size_t* bytes, CUlibrary library, const char* name) {
  RGPU_STATE_OR_RETURN(s);
  ModuleObj* m = s->FindModule(library);
  if (m == nullptr || !m->is_library) return CUDA_ERROR_INVALID_HANDLE;
  return GetGlobal(s, m, name, dptr, bytes, /*managed=*/true);
}

CUresult cuKernelGetFunction(CUfunction* pFunc, CUkernel kernel) {
  RGPU_LOG_DEBUG("cuKernelGetFunction");
  if (pFunc == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  FuncObj* f = s->FindFunc(kernel);
  if (f == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (s->Current() == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  // The worker resolves a kernel to the current context's function at each
  // launch; one client handle serves both roles.
  *pFunc = reinterpret_cast<CUfunction>(f);
  return CUDA_SUCCESS;
}

CUresult cuKernelGetLibrary(CUlibrary* pLib, CUkernel kernel) {
  RGPU_LOG_DEBUG("cuKernelGetLibrary");
  if (pLib == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  FuncObj* f = s->FindFunc(kernel);
  if (f == nullptr || !f->is_kernel) return CUDA_ERROR_INVALID_HANDLE;
  *pLib = reinterpret_cast<CUlibrary>(f->module);
  return CUDA_SUCCESS;
}

CUresult cuFuncGetModule(CUmodule* hmod, CUfunction hfunc) {
  RGPU_LOG_DEBUG("cuFuncGetModule");
  if (hmod == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  FuncObj* f = s->FindFunc(hfunc);
  if (f == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  *hmod = reinterpret_cast<CUmodule>(f->module);
  return CUDA_SUCCESS;
}

CUresult cuFuncGetAttribute(int* pi, CUfunction_attribute attrib, CUfunction hfunc) {
  RGPU_LOG_DEBUG("cuFuncGetAttribute");
  if (pi == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  FuncObj* f = s->FindFunc(hfunc);
  if (f == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (attrib < 0 || static_cast<size_t>(attrib) >= f->attrs.size()) return CUDA_ERROR_INVALID_VALUE;
  *pi = f->attrs[attrib];
  return CUDA_SUCCESS;
}

CUresult cuKernelGetAttribute(int* pi, CUfunction_attribute attrib, CUkernel kernel, CUdevice) {
  RGPU_LOG_DEBUG("cuKernelGetAttribute");
  return cuFuncGetAttribute(pi, attrib, reinterpret_cast<CUfunction>(kernel));
}

CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value) {
  RGPU_LOG_DEBUG("cuFuncSetAttribute");
  RGPU_STATE_OR_RETURN(s);
  FuncObj* f = s->FindFunc(hfunc);
  if (f == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  // Libraries set the same attribute before every launch (flash attention's
  // dynamic shared memory): a value already in force costs no round trip.
  if (attrib >= 0 && static_cast<size_t>(attrib) < f->attrs.size() && f->attrs[attrib] == value &&
      (attrib == CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES ||
       attrib == CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT))
    return CUDA_SUCCESS;
  CtxObj* c = s->Current() ? s->Current() : f->module->ctx;
  CUresult r = Sync(s, proto::CallId::kFuncSetAttribute,
                    proto::FuncSetAttributeReq{c->id, f->id, static_cast<uint32_t>(attrib), value});
  if (r == CUDA_SUCCESS) s->SetFuncAttribute(f, attrib, value);
  return r;
}

CUresult cuKernelSetAttribute(CUfunction_attribute attrib, int value, CUkernel kernel, CUdevice) {
  RGPU_LOG_DEBUG("cuKernelSetAttribute");
  return cuFuncSetAttribute(reinterpret_cast<CUfunction>(kernel), attrib, value);
}

CUresult cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config) {
  RGPU_LOG_DEBUG("cuFuncSetCacheConfig");
  RGPU_STATE_OR_RETURN(s);
  FuncObj* f = s->FindFunc(hfunc);
  if (f == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  CtxObj* c = s->Current() ? s->Current() : f->module->ctx;
  return Post(s, proto::CallId::kFuncSetCacheConfig,
              proto::FuncSetCacheConfigReq{c->id, f->id, static_cast<uint32_t>(config)});
}

CUresult cuKernelSetCacheConfig(CUkernel kernel, CUfunc_cache config, CUdevice) {
  return cuFuncSetCacheConfig(reinterpret_cast<CUfunction>(kernel), config);
}

CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t* paramOffset, size_t* paramSize) {
  RGPU_LOG_DEBUG("cuFuncGetParamInfo");
  RGPU_STATE_OR_RETURN(s);
  FuncObj* f = s->FindFunc(func);
  if (f == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (paramIndex >= f->params.size()) return CUDA_ERROR_INVALID_VALUE;
  if (paramOffset) *paramOffset = f->params[paramIndex].first;
  if (paramSize) *paramSize = f->params[paramIndex].second;
  return CUDA_SUCCESS;
}

CUresult cuKernelGetParamInfo(CUkernel kernel, size_t i, size_t* off, size_t* size) {
  return cuFuncGetParamInfo(reinterpret_cast<CUfunction>(kernel), i, off, size);
}

CUresult cuFuncGetName(const char** name, CUfunction hfunc) {
  RGPU_LOG_DEBUG("cuFuncGetName");
  if (name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  FuncObj* f = s->FindFunc(hfunc);
  if (f == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  *name = f->name.c_str();
  return CUDA_SUCCESS;
}

CUresult cuKernelGetName(const char** name, CUkernel kernel) {
  return cuFuncGetName(name, reinterpret_cast<CUfunction>(kernel));
}

CUresult cuFuncIsLoaded(CUfunctionLoadingState* state, CUfunction function) {
  RGPU_LOG_DEBUG("cuFuncIsLoaded");
  if (state == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (s->FindFunc(function) == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  *state = CU_FUNCTION_LOADING_STATE_LOADED;
  return CUDA_SUCCESS;
}

CUresult cuFuncLoad(CUfunction function) {
  RGPU_LOG_DEBUG("cuFuncLoad");
  RGPU_STATE_OR_RETURN(s);
  return s->FindFunc(function) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

}  // extern "C"
