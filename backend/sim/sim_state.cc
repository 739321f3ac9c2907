// SimDevice: creation from the profile, handle bookkeeping, shared helpers.
#include <atomic>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "backend/sim/kernel_registry.h"
#include "backend/sim/sim_state.h"
#include "common/log.h"

namespace rgpu::backend::sim {
namespace {

std::atomic<uint64_t> g_next_id{0x5100000};
std::atomic<uint64_t> g_generation{0};
// Replaced only by Install(), which must not race with driver calls.
SimDevice* g_device = nullptr;
std::unique_ptr<SimDevice>* g_owner = nullptr;

struct ThreadState {
  uint64_t generation = 0;
  std::vector<uint64_t> stack;
};
thread_local ThreadState t_state;

Status ProfileError(const std::string& path, const std::string& what) {
  return Status::Invalid("sim: profile " + path + ": " + what);
}

bool ParseUuid(const std::string& hex, CUuuid* out) {
  std::string h;
  for (char c : hex) {
    if (c != '-') h.push_back(c);
  }
  if (h.size() != 32) return false;
  for (int i = 0; i < 16; ++i) {
    unsigned v = 0;
    if (sscanf(h.c_str() + 2 * i, "%2x", &v) != 1) return false;
    out->bytes[i] = static_cast<char>(v);
  }
  return true;
}

// Sim device i > 0 gets the profile's facts with its own UUID and PCI bus.
void Derive(DeviceFacts* f, int i) {
  if (i == 0) return;
  f->uuid.bytes[15] = static_cast<char>(static_cast<unsigned char>(f->uuid.bytes[15]) + i);
  f->uuid.bytes[14] = static_cast<char>(static_cast<unsigned char>(f->uuid.bytes[14]) ^ (i >> 8));
  int& bus = f->attributes[CU_DEVICE_ATTRIBUTE_PCI_BUS_ID];
  bus = (bus + i) & 0xff;
}

}  // namespace

uint64_t NextId() { return g_next_id.fetch_add(16); }

SimDevice* SimDevice::Get() { return g_device; }

void SimDevice::Install(std::unique_ptr<SimDevice> dev) {
  if (g_owner == nullptr) g_owner = new std::unique_ptr<SimDevice>;  // leaked: usable at exit
  g_device = dev.get();
  *g_owner = std::move(dev);  // frees the previous instance (and its arenas)
}

Result<std::unique_ptr<SimDevice>> SimDevice::Create(const BackendOptions& options) {
  const std::string& path = options.profile_path;
  if (path.empty()) return Status::Invalid("sim: no device profile given (profile_path)");
  const int count = options.sim_indices.empty() ? options.sim_gpus : static_cast<int>(options.sim_indices.size());
  if (count < 1 || count > 64) {
    return Status::Invalid("sim: sim_gpus " + std::to_string(count) + " not in 1..64");
  }
  std::ifstream in(path);
  if (!in) return Status::Errno(Code::kInvalid, "sim: open profile " + path, errno);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return ProfileError(path, "not a JSON object");

  DeviceFacts facts;
  if (!j.contains("name") || !j["name"].is_string()) return ProfileError(path, "no string 'name'");
  facts.name = j["name"].get<std::string>();
  if (!j.contains("total_mem") || !j["total_mem"].is_number_unsigned()) {
    return ProfileError(path, "no unsigned 'total_mem'");
  }
  facts.total_mem = j["total_mem"].get<uint64_t>();
  if (!j.contains("uuid") || !j["uuid"].is_string() ||
      !ParseUuid(j["uuid"].get<std::string>(), &facts.uuid)) {
    return ProfileError(path, "'uuid' is not 32 hex digits");
  }
  if (!j.contains("attributes") || !j["attributes"].is_object()) {
    return ProfileError(path, "no 'attributes' object");
  }
  for (auto& [key, value] : j["attributes"].items()) {
    char* end = nullptr;
    long id = strtol(key.c_str(), &end, 10);
    if (*end != 0 || id <= 0 || id >= CU_DEVICE_ATTRIBUTE_MAX || !value.is_number_integer()) {
      return ProfileError(path, "bad attribute '" + key + "'");
    }
    facts.attributes[static_cast<int>(id)] = value.get<int>();
  }
  auto attr = [&](int id) {
    auto it = facts.attributes.find(id);
    return it == facts.attributes.end() ? -1 : it->second;
  };
  int major = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
  int minor = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
  if (major <= 0 || minor < 0) return ProfileError(path, "no compute capability attributes (75, 76)");
  facts.cc = major * 10 + minor;

  std::unique_ptr<SimDevice> dev(new SimDevice);
  dev->driver_version = j.value("driver_version", 13000);
  dev->generation = g_generation.fetch_add(1) + 1;
  for (int i = 0; i < count; ++i) {
    auto d = std::make_unique<Device>();
    d->facts = facts;
    Derive(&d->facts, options.sim_indices.empty() ? options.sim_first_index + i : options.sim_indices[i]);
    // Reserve as much address space as the card has memory; fall back to less
    // (with a warning) where the host limits virtual memory.
    Status s;
    for (uint64_t bytes = facts.total_mem; bytes >= (uint64_t{1} << 30); bytes /= 2) {
      s = d->arena.Reserve(bytes);
      if (s.ok()) {
        if (bytes != facts.total_mem) {
          RGPU_LOG_WARN("sim: device %d: reserved only %llu of %llu bytes of address space", i,
                        static_cast<unsigned long long>(bytes),
                        static_cast<unsigned long long>(facts.total_mem));
        }
        break;
      }
    }
    if (!s.ok()) return std::move(s).With("sim: device " + std::to_string(i));
    Context primary;
    primary.id = NextId();
    primary.device = i;
    primary.primary = true;
    primary.active = false;
    d->primary_ctx = primary.id;
    dev->contexts[primary.id] = primary;
    dev->devices.push_back(std::move(d));
  }
  return dev;
}

CUresult SimDevice::CheckDevice(CUdevice dev) const {
  return dev >= 0 && static_cast<size_t>(dev) < devices.size() ? CUDA_SUCCESS
                                                                 : CUDA_ERROR_INVALID_DEVICE;
}

int SimDevice::Attr(int device, CUdevice_attribute a) const {
  const auto& m = devices[device]->facts.attributes;
  auto it = m.find(a);
  return it == m.end() ? 0 : it->second;
}

std::vector<uint64_t>& SimDevice::ThreadStack() {
  if (t_state.generation != generation) {
    t_state.generation = generation;
    t_state.stack.clear();
  }
  return t_state.stack;
}

Context* SimDevice::FindContext(uint64_t id) {
  auto it = contexts.find(id);
  return it == contexts.end() ? nullptr : &it->second;
}

CUresult SimDevice::CurrentContext(Context** out) {
  std::vector<uint64_t>& st = ThreadStack();
  if (st.empty()) return CUDA_ERROR_INVALID_CONTEXT;
  Context* c = FindContext(st.back());
  if (c == nullptr || !c->active) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  if (c->sticky != CUDA_SUCCESS) return c->sticky;
  *out = c;
  return CUDA_SUCCESS;
}

void SimDevice::DestroyContextResources(uint64_t ctx) {
  for (auto it = libraries.begin(); it != libraries.end(); ++it) it->second.modules.erase(ctx);
  std::vector<uint64_t> mods;
  for (auto& [id, m] : modules) {
    if (m.ctx == ctx) mods.push_back(id);
  }
  for (uint64_t id : mods) DestroyModule(id);
  std::erase_if(streams, [&](const auto& kv) { return kv.second.ctx == ctx; });
  std::erase_if(captures, [&](const auto& kv) { return kv.second.ctx == ctx; });
  std::erase_if(graph_execs, [&](const auto& kv) { return kv.second.ctx == ctx; });
  std::erase_if(events, [&](const auto& kv) { return kv.second.ctx == ctx; });
  for (auto& d : devices) {
    std::vector<uint64_t> bases;
    for (const auto& [base, block] : d->arena.blocks()) {
      if (block.ctx == ctx) bases.push_back(base);
    }
    for (uint64_t b : bases) d->arena.Free(b);
  }
}

Arena* SimDevice::ArenaFor(uint64_t p) {
  for (auto& d : devices) {
    if (d->arena.Owns(p)) return &d->arena;
  }
  return nullptr;
}

bool SimDevice::IsDeviceRange(uint64_t p, uint64_t n) {
  Arena* a = ArenaFor(p);
  return a != nullptr && a->ContainsRange(p, n);
}

CUresult SimDevice::CheckStream(CUstream s) {
  uint64_t id = FromHandle(s);
  if (id == 0 || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD) {
    Context* ctx = nullptr;
    return CurrentContext(&ctx);
  }
  auto it = streams.find(id);
  if (it == streams.end()) return CUDA_ERROR_INVALID_HANDLE;
  Context* c = FindContext(it->second.ctx);
  if (c == nullptr || !c->active) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  return c->sticky;
}

CUresult SimDevice::LibraryModule(uint64_t library, uint64_t* module) {
  auto lib = libraries.find(library);
  if (lib == libraries.end()) return CUDA_ERROR_INVALID_HANDLE;
  SIM_CURRENT_CTX(this, ctx);
  auto it = lib->second.modules.find(ctx->id);
  if (it != lib->second.modules.end()) {
    *module = it->second;
    return CUDA_SUCCESS;
  }
  CUresult r = CreateModule(ctx->id, lib->second.image, library, module);
  if (r == CUDA_SUCCESS) lib->second.modules[ctx->id] = *module;
  return r;
}

CUresult SimDevice::KernelFunction(uint64_t kernel, uint64_t* id) {
  auto k = kernels.find(kernel);
  if (k == kernels.end()) return CUDA_ERROR_INVALID_HANDLE;
  uint64_t module = 0;
  if (CUresult r = LibraryModule(k->second.library, &module); r != CUDA_SUCCESS) return r;
  Module& m = modules[module];
  auto f = m.functions.find(k->second.info->name);
  if (f == m.functions.end()) return CUDA_ERROR_NOT_FOUND;
  Function& fn = functions[f->second];
  fn.kernel = kernel;
  if (k->second.attrs_set) fn.attrs = k->second.attrs;
  *id = f->second;
  return CUDA_SUCCESS;
}

CUresult SimDevice::ResolveFunction(CUfunction f, uint64_t* id, Function** out) {
  uint64_t h = FromHandle(f);
  if (h == 0) return CUDA_ERROR_INVALID_HANDLE;
  auto it = functions.find(h);
  if (it == functions.end()) {
    if (!kernels.count(h)) return CUDA_ERROR_INVALID_HANDLE;
    if (CUresult r = KernelFunction(h, &h); r != CUDA_SUCCESS) return r;
    it = functions.find(h);
  }
  *id = h;
  *out = &it->second;
  return CUDA_SUCCESS;
}

CUresult SimDevice::CreateModule(uint64_t ctx, std::shared_ptr<const LoadedImage> image,
                                 uint64_t library, uint64_t* id) {
  Context* c = FindContext(ctx);
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  uint64_t mid = NextId();
  Module m;
  m.ctx = ctx;
  m.library = library;
  m.image = image;
  Arena& arena = devices[c->device]->arena;
  for (const image::GlobalInfo& g : image->info.globals) {
    uint64_t p = arena.Allocate(std::max<uint64_t>(g.size, 1), mid, ctx);
    if (p == 0) {
      for (auto& [name, global] : m.globals) arena.Free(global.first);
      return CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (!g.init.empty()) {
      std::memcpy(reinterpret_cast<void*>(p), g.init.data(), std::min<uint64_t>(g.init.size(), g.size));
    }
    m.globals[g.name] = {p, g.size};
  }
  for (const image::KernelInfo& k : image->info.kernels) {
    uint64_t fid = NextId();
    Function fn;
    fn.module = mid;
    fn.info = &k;
    fn.attrs = DefaultFuncAttrs(k);
    for (const image::KernelParam& p : k.params) fn.param_sizes.push_back(p.size);
    functions[fid] = std::move(fn);
    m.functions[k.name] = fid;
  }
  modules[mid] = std::move(m);
  *id = mid;
  return CUDA_SUCCESS;
}

void SimDevice::DestroyModule(uint64_t id) {
  auto it = modules.find(id);
  if (it == modules.end()) return;
  Context* c = FindContext(it->second.ctx);
  for (auto& [name, fid] : it->second.functions) functions.erase(fid);
  if (c != nullptr) {
    Arena& arena = devices[c->device]->arena;
    for (auto& [name, global] : it->second.globals) arena.Free(global.first);
  }
  modules.erase(it);
}

CUresult LoadImage(const void* image, int cc, std::shared_ptr<const LoadedImage>* out) {
  if (image == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto fail = [](CUresult r, const Status& s) {
    RGPU_LOG_WARN("sim: module load: %s", s.message().c_str());
    return r;
  };
  auto img = std::make_shared<LoadedImage>();
  image::ImageKind kind = image::DetectImageKind(image);
  image::Bytes bytes;
  if (kind == image::ImageKind::kFatbinWrapper) {
    Result<image::Bytes> data = image::FatbinWrapperData(image);
    if (!data.ok()) return fail(CUDA_ERROR_INVALID_IMAGE, data.status());
    bytes = *data;
    kind = image::ImageKind::kFatbin;
  } else {
    Result<uint64_t> size = image::ImageSize(image);
    if (!size.ok()) return fail(CUDA_ERROR_INVALID_IMAGE, size.status());
    bytes = image::Bytes(static_cast<const std::byte*>(image), *size);
  }
  std::vector<image::FatbinEntry> entries;
  std::string ptx_text;
  if (kind == image::ImageKind::kFatbin) {
    Result<std::vector<image::FatbinEntry>> parsed = image::ParseFatbin(bytes);
    if (!parsed.ok()) return fail(CUDA_ERROR_INVALID_IMAGE, parsed.status());
    entries = std::move(parsed.value());
    if (const image::FatbinEntry* e = image::SelectCode(entries, cc)) {
      bytes = e->data();
      kind = e->is_elf() ? image::ImageKind::kElf : image::ImageKind::kPtx;
    } else {
      RGPU_LOG_WARN("sim: module load: fatbin has no sm_%d.x ELF and no PTX <= compute_%d", cc / 10,
                    cc);
      return CUDA_ERROR_NO_BINARY_FOR_GPU;
    }
  }
  if (kind == image::ImageKind::kElf) {
    Result<image::ModuleInfo> info = image::ParseCubin(bytes);
    if (!info.ok()) return fail(CUDA_ERROR_INVALID_IMAGE, info.status());
    int arch = static_cast<int>(info->arch);
    if (arch / 10 != cc / 10 || arch > cc) {
      RGPU_LOG_WARN("sim: module load: sm_%d ELF cannot run on compute capability %d.%d", arch,
                    cc / 10, cc % 10);
      return CUDA_ERROR_NO_BINARY_FOR_GPU;
    }
    img->info = std::move(info.value());
    img->description = "sm_" + std::to_string(arch) + " ELF";
    img->binary_version = arch;
  } else if (kind == image::ImageKind::kPtx) {
    std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    Result<image::ModuleInfo> info = image::ParsePtx(text);
    if (!info.ok()) return fail(CUDA_ERROR_INVALID_PTX, info.status());
    // The sim never JITs: PTX is accepted only when every kernel has a host
    // implementation.
    for (const image::KernelInfo& k : info->kernels) {
      if (FindSimKernel(k.name.c_str()) == nullptr) {
        RGPU_LOG_WARN("sim: module load: PTX-only kernel %s has no host implementation "
                      "(the sim does not JIT)", k.name.c_str());
        return CUDA_ERROR_NO_BINARY_FOR_GPU;
      }
    }
    img->info = std::move(info.value());
    img->description = "PTX compute_" + std::to_string(img->info.arch);
    img->binary_version = cc;
  } else {
    return fail(CUDA_ERROR_INVALID_IMAGE, Status::Invalid("unknown image kind"));
  }
  *out = std::move(img);
  return CUDA_SUCCESS;
}

}  // namespace rgpu::backend::sim
