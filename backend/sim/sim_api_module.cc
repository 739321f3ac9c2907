// Sim driver functions: modules, libraries, functions, kernels.
//
// Images are parsed with image/ (any of fatbin wrapper, fatbin, cubin, PTX;
// see LoadImage in sim_state.cc). A module belongs to the context current at
// load time; its __device__ / __constant__ globals are allocated from that
// device's arena and initialised from the image. A library is context-free:
// it makes one module per context on first use (cuLibraryGetModule /
// GetGlobal, cuKernelGetFunction, or launching the CUkernel).
#include <cstring>

#include "backend/sim/sim_state.h"
#include "common/log.h"

namespace rgpu::backend::sim {
namespace {

// Validates JIT options and answers the output ones as "nothing logged".
CUresult HandleJitOptions(unsigned num, CUjit_option* options, void** values) {
  if (num == 0) return CUDA_SUCCESS;
  if (options == nullptr || values == nullptr) return CUDA_ERROR_INVALID_VALUE;
  for (unsigned i = 0; i < num; ++i) {
    if (EnumValue(options[i]) < 0 || EnumValue(options[i]) >= CU_JIT_NUM_OPTIONS) {
      return CUDA_ERROR_INVALID_VALUE;
    }
  }
  for (unsigned i = 0; i < num; ++i) {
    switch (options[i]) {  // all valid enumerators now
      case CU_JIT_WALL_TIME: {
        float zero = 0;
        std::memcpy(&values[i], &zero, sizeof zero);
        break;
      }
      case CU_JIT_INFO_LOG_BUFFER:
      case CU_JIT_ERROR_LOG_BUFFER: {
        // Terminate the caller's log buffer if it has room.
        CUjit_option size_opt = options[i] == CU_JIT_INFO_LOG_BUFFER
                                    ? CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES
                                    : CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES;
        for (unsigned j = 0; j < num; ++j) {
          if (options[j] == size_opt && reinterpret_cast<uintptr_t>(values[j]) > 0 &&
              values[i] != nullptr) {
            static_cast<char*>(values[i])[0] = 0;
          }
        }
        break;
      }
      default: break;
    }
  }
  for (unsigned i = 0; i < num; ++i) {
    if (options[i] == CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES ||
        options[i] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES) {
      values[i] = nullptr;  // OUT: bytes of log written
    }
  }
  return CUDA_SUCCESS;
}

CUresult LoadModule(CUmodule* module, const void* image) {
  SIM_ENTER(s);
  if (module == nullptr || image == nullptr) return CUDA_ERROR_INVALID_VALUE;
  SIM_CURRENT_CTX(s, ctx);
  std::shared_ptr<const LoadedImage> img;
  if (CUresult r = LoadImage(image, s->devices[ctx->device]->facts.cc, &img); r != CUDA_SUCCESS) {
    return r;
  }
  uint64_t id = 0;
  if (CUresult r = s->CreateModule(ctx->id, img, 0, &id); r != CUDA_SUCCESS) return r;
  *module = ToHandle<CUmodule>(id);
  return CUDA_SUCCESS;
}

Module* FindModule(SimDevice* s, CUmodule m) {
  auto it = s->modules.find(FromHandle(m));
  return it == s->modules.end() ? nullptr : &it->second;
}

CUresult GetGlobal(const Module& m, const char* name, CUdeviceptr* dptr, size_t* bytes) {
  auto it = m.globals.find(std::string_view(name));
  if (it == m.globals.end()) return CUDA_ERROR_NOT_FOUND;
  if (dptr != nullptr) *dptr = it->second.first;
  if (bytes != nullptr) *bytes = it->second.second;
  return CUDA_SUCCESS;
}

CUresult ParamInfo(const image::KernelInfo& k, size_t index, size_t* offset, size_t* size) {
  if (offset == nullptr || index >= k.params.size()) return CUDA_ERROR_INVALID_VALUE;
  *offset = k.params[index].offset;
  if (size != nullptr) *size = k.params[index].size;  // optional
  return CUDA_SUCCESS;
}

Kernel* FindKernel(SimDevice* s, CUkernel k) {
  auto it = s->kernels.find(FromHandle(k));
  return it == s->kernels.end() ? nullptr : &it->second;
}

}  // namespace

// ---- modules -----------------------------------------------------------------

CUresult cuModuleLoadData(CUmodule* module, const void* image) { return LoadModule(module, image); }

CUresult cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int numOptions,
                            CUjit_option* options, void** optionValues) {
  if (CUresult r = HandleJitOptions(numOptions, options, optionValues); r != CUDA_SUCCESS) return r;
  return LoadModule(module, image);
}

CUresult cuModuleLoadFatBinary(CUmodule* module, const void* fatCubin) {
  return LoadModule(module, fatCubin);
}

CUresult cuModuleUnload(CUmodule hmod) {
  SIM_ENTER(s);
  Module* m = FindModule(s, hmod);
  if (m == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (m->library != 0) {
    auto lib = s->libraries.find(m->library);
    if (lib != s->libraries.end()) lib->second.modules.erase(m->ctx);
  }
  s->DestroyModule(FromHandle(hmod));
  return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name) {
  SIM_ENTER(s);
  if (hfunc == nullptr || name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Module* m = FindModule(s, hmod);
  if (m == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  auto it = m->functions.find(std::string_view(name));
  if (it == m->functions.end()) return CUDA_ERROR_NOT_FOUND;
  *hfunc = ToHandle<CUfunction>(it->second);
  return CUDA_SUCCESS;
}

CUresult cuModuleGetGlobal_v2(CUdeviceptr* dptr, size_t* bytes, CUmodule hmod, const char* name) {
  SIM_ENTER(s);
  if (name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Module* m = FindModule(s, hmod);
  if (m == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  return GetGlobal(*m, name, dptr, bytes);
}

// ---- libraries -----------------------------------------------------------------

CUresult cuLibraryLoadData(CUlibrary* library, const void* code, CUjit_option* jitOptions,
                           void** jitOptionsValues, unsigned int numJitOptions,
                           CUlibraryOption* libraryOptions, void** libraryOptionValues,
                           unsigned int numLibraryOptions) {
  SIM_ENTER(s);
  if (library == nullptr || code == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = HandleJitOptions(numJitOptions, jitOptions, jitOptionsValues); r != CUDA_SUCCESS) {
    return r;
  }
  if (numLibraryOptions != 0 && (libraryOptions == nullptr || libraryOptionValues == nullptr)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  for (unsigned i = 0; i < numLibraryOptions; ++i) {
    // HOST_UNIVERSAL_FUNCTION_AND_DATA_TABLE and BINARY_IS_PRESERVED change
    // nothing for the sim.
    if (EnumValue(libraryOptions[i]) < 0 || EnumValue(libraryOptions[i]) >= CU_LIBRARY_NUM_OPTIONS) {
      return CUDA_ERROR_INVALID_VALUE;
    }
  }
  // All sim devices share one profile, so device 0's cc stands for all.
  std::shared_ptr<const LoadedImage> img;
  if (CUresult r = LoadImage(code, s->devices[0]->facts.cc, &img); r != CUDA_SUCCESS) return r;
  uint64_t id = NextId();
  Library lib;
  lib.image = img;
  for (const image::KernelInfo& k : img->info.kernels) {
    uint64_t kid = NextId();
    Kernel kr;
    kr.library = id;
    kr.info = &k;
    kr.attrs = DefaultFuncAttrs(k);
    s->kernels[kid] = kr;
    lib.kernels[k.name] = kid;
  }
  s->libraries[id] = std::move(lib);
  *library = ToHandle<CUlibrary>(id);
  return CUDA_SUCCESS;
}

CUresult cuLibraryUnload(CUlibrary library) {
  SIM_ENTER(s);
  auto it = s->libraries.find(FromHandle(library));
  if (it == s->libraries.end()) return CUDA_ERROR_INVALID_HANDLE;
  for (auto& [ctx, module] : it->second.modules) s->DestroyModule(module);
  for (auto& [name, kid] : it->second.kernels) s->kernels.erase(kid);
  s->libraries.erase(it);
  return CUDA_SUCCESS;
}

CUresult cuLibraryGetKernel(CUkernel* pKernel, CUlibrary library, const char* name) {
  SIM_ENTER(s);
  if (pKernel == nullptr || name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto it = s->libraries.find(FromHandle(library));
  if (it == s->libraries.end()) return CUDA_ERROR_INVALID_HANDLE;
  auto k = it->second.kernels.find(std::string_view(name));
  if (k == it->second.kernels.end()) return CUDA_ERROR_NOT_FOUND;
  *pKernel = ToHandle<CUkernel>(k->second);
  return CUDA_SUCCESS;
}

CUresult cuLibraryGetModule(CUmodule* pMod, CUlibrary library) {
  SIM_ENTER(s);
  if (pMod == nullptr) return CUDA_ERROR_INVALID_VALUE;
  uint64_t module = 0;
  if (CUresult r = s->LibraryModule(FromHandle(library), &module); r != CUDA_SUCCESS) return r;
  *pMod = ToHandle<CUmodule>(module);
  return CUDA_SUCCESS;
}

CUresult cuLibraryGetGlobal(CUdeviceptr* dptr, size_t* bytes, CUlibrary library, const char* name) {
  SIM_ENTER(s);
  if (name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  uint64_t module = 0;
  if (CUresult r = s->LibraryModule(FromHandle(library), &module); r != CUDA_SUCCESS) return r;
  return GetGlobal(s->modules[module], name, dptr, bytes);
}

// A __managed__ variable of the library (NOT_FOUND for any other name, as
// the driver answers). The sim's memory is host memory, so its address is
// already reachable from this process.
CUresult cuLibraryGetManaged(CUdeviceptr* dptr, size_t* bytes, CUlibrary library, const char* name) {
  SIM_ENTER(s);
  if (name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  uint64_t module = 0;
  if (CUresult r = s->LibraryModule(FromHandle(library), &module); r != CUDA_SUCCESS) return r;
  const Module& m = s->modules[module];
  const image::GlobalInfo* g = m.image != nullptr ? m.image->info.FindGlobal(name) : nullptr;
  if (g == nullptr || !g->is_managed) return CUDA_ERROR_NOT_FOUND;
  return GetGlobal(m, name, dptr, bytes);
}

// ---- kernels -------------------------------------------------------------------

CUresult cuKernelGetFunction(CUfunction* pFunc, CUkernel kernel) {
  SIM_ENTER(s);
  if (pFunc == nullptr) return CUDA_ERROR_INVALID_VALUE;
  uint64_t id = 0;
  if (CUresult r = s->KernelFunction(FromHandle(kernel), &id); r != CUDA_SUCCESS) return r;
  *pFunc = ToHandle<CUfunction>(id);
  return CUDA_SUCCESS;
}

CUresult cuKernelGetAttribute(int* pi, CUfunction_attribute attrib, CUkernel kernel, CUdevice dev) {
  SIM_ENTER(s);
  if (pi == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckDevice(dev); r != CUDA_SUCCESS) return r;
  Kernel* k = FindKernel(s, kernel);
  if (k == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  const LoadedImage& img = *s->libraries[k->library].image;
  return GetFuncAttribute(*s, dev, *k->info, k->attrs, img, attrib, pi);
}

CUresult cuKernelSetAttribute(CUfunction_attribute attrib, int val, CUkernel kernel, CUdevice dev) {
  SIM_ENTER(s);
  if (CUresult r = s->CheckDevice(dev); r != CUDA_SUCCESS) return r;
  Kernel* k = FindKernel(s, kernel);
  if (k == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (CUresult r = SetFuncAttribute(*s, dev, *k->info, attrib, val, &k->attrs); r != CUDA_SUCCESS) {
    return r;
  }
  k->attrs_set = true;
  // Functions already made from this kernel follow (sim devices are identical).
  for (auto& [fid, fn] : s->functions) {
    if (fn.kernel == FromHandle(kernel)) fn.attrs = k->attrs;
  }
  return CUDA_SUCCESS;
}

CUresult cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t* paramOffset,
                              size_t* paramSize) {
  SIM_ENTER(s);
  Kernel* k = FindKernel(s, kernel);
  if (k == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  return ParamInfo(*k->info, paramIndex, paramOffset, paramSize);
}

CUresult cuKernelGetName(const char** name, CUkernel hfunc) {
  SIM_ENTER(s);
  if (name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  Kernel* k = FindKernel(s, hfunc);
  if (k == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  *name = k->info->name.c_str();  // lives as long as the library
  return CUDA_SUCCESS;
}

// ---- functions -----------------------------------------------------------------

CUresult cuFuncGetAttribute(int* pi, CUfunction_attribute attrib, CUfunction hfunc) {
  SIM_ENTER(s);
  if (pi == nullptr) return CUDA_ERROR_INVALID_VALUE;
  uint64_t id = 0;
  Function* f = nullptr;
  if (CUresult r = s->ResolveFunction(hfunc, &id, &f); r != CUDA_SUCCESS) return r;
  const Module& m = s->modules[f->module];
  return GetFuncAttribute(*s, s->contexts[m.ctx].device, *f->info, f->attrs, *m.image, attrib, pi);
}

CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value) {
  SIM_ENTER(s);
  uint64_t id = 0;
  Function* f = nullptr;
  if (CUresult r = s->ResolveFunction(hfunc, &id, &f); r != CUDA_SUCCESS) return r;
  int device = s->contexts[s->modules[f->module].ctx].device;
  return SetFuncAttribute(*s, device, *f->info, attrib, value, &f->attrs);
}

CUresult cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config) {
  SIM_ENTER(s);
  uint64_t id = 0;
  Function* f = nullptr;
  if (CUresult r = s->ResolveFunction(hfunc, &id, &f); r != CUDA_SUCCESS) return r;
  if (config < CU_FUNC_CACHE_PREFER_NONE || config > CU_FUNC_CACHE_PREFER_EQUAL) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  f->attrs.cache_config = config;
  return CUDA_SUCCESS;
}

CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t* paramOffset,
                            size_t* paramSize) {
  SIM_ENTER(s);
  uint64_t id = 0;
  Function* f = nullptr;
  if (CUresult r = s->ResolveFunction(func, &id, &f); r != CUDA_SUCCESS) return r;
  return ParamInfo(*f->info, paramIndex, paramOffset, paramSize);
}

CUresult cuFuncGetName(const char** name, CUfunction hfunc) {
  SIM_ENTER(s);
  if (name == nullptr) return CUDA_ERROR_INVALID_VALUE;
  uint64_t id = 0;
  Function* f = nullptr;
  if (CUresult r = s->ResolveFunction(hfunc, &id, &f); r != CUDA_SUCCESS) return r;
  *name = f->info->name.c_str();  // lives as long as the module
  return CUDA_SUCCESS;
}

}  // namespace rgpu::backend::sim
