#include "client/registered_memory.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "client/api_common.h"
#include "client/managed_memory.h"
#include "proto/frame.h"

namespace rgpu::client {

std::atomic<int> g_registered_buffers{0};

namespace {

// Pages compared and sent as one unit before GPU work.
constexpr size_t kCompareBlock = 4096;

struct Buffer {
  size_t size = 0;
  CtxObj* ctx = nullptr;
  CUdeviceptr mirror = 0;
  // What the mirror holds as of the last exchange with the device.
  std::vector<uint8_t> snapshot;
  bool device_newer = false;  // GPU work since the last fetch may have written it
};

std::mutex g_mu;
// By host base. Never destroyed: exit handlers may still synchronise.
std::map<uintptr_t, Buffer>& g_buffers = *new std::map<uintptr_t, Buffer>;
std::atomic<int> g_mirrors{0};

// The buffer holding `a`, or whose end `a` is (a kernel's loop bound), under g_mu.
std::map<uintptr_t, Buffer>::iterator FindLocked(uintptr_t a) {
  auto it = g_buffers.upper_bound(a);
  if (it == g_buffers.begin()) return g_buffers.end();
  --it;
  return a - it->first <= it->second.size ? it : g_buffers.end();
}

// Sends [off, off + n) of the snapshot to the mirror, ordered after earlier work.
CUresult Send(ClientState* s, const Buffer& b, size_t off, size_t n) {
  for (size_t done = 0; done < n;) {
    size_t len = std::min<size_t>(proto::kMaxChunk, n - done);
    CUresult r = Post(s, proto::CallId::kMemcpyHtoD,
                      proto::MemcpyHtoDReq{b.ctx->id, 0, 0, b.mirror + off + done,
                                           std::span<const uint8_t>(b.snapshot.data() + off + done, len)});
    if (r != CUDA_SUCCESS) return r;
    done += len;
  }
  return CUDA_SUCCESS;
}

CUresult MakeMirror(ClientState* s, uintptr_t base, Buffer& b) {
  if (b.mirror != 0) return CUDA_SUCCESS;
  proto::MemAllocRep rep;
  CUresult r = Sync(s, proto::CallId::kMemAlloc, proto::MemAllocReq{b.ctx->id, b.size}, &rep);
  if (r != CUDA_SUCCESS) return r;
  s->AddAllocation(rep.dptr, b.size, b.ctx);
  b.mirror = rep.dptr;
  b.snapshot.assign(reinterpret_cast<const uint8_t*>(base), reinterpret_cast<const uint8_t*>(base) + b.size);
  b.device_newer = false;
  g_mirrors.fetch_add(1, std::memory_order_relaxed);
  if (CUresult r = Send(s, b, 0, b.size); r != CUDA_SUCCESS) return r;
  RGPU_LOG_DEBUG("registered memory 0x%llx + %zu: mirrored at device 0x%llx", (unsigned long long)base, b.size,
                 (unsigned long long)b.mirror);
  return OrderAfterLegacyCopies(s, b.ctx);
}

// Sends the blocks whose host bytes differ from the snapshot; *sent is set
// if any went.
CUresult Push(ClientState* s, uintptr_t base, Buffer& b, bool* sent) {
  const auto* host = reinterpret_cast<const uint8_t*>(base);
  for (size_t off = 0; off < b.size;) {
    size_t len = std::min(kCompareBlock, b.size - off);
    if (memcmp(host + off, b.snapshot.data() + off, len) == 0) {
      off += len;
      continue;
    }
    // A run of changed blocks goes as one copy.
    size_t end = off + len;
    while (end < b.size && end - off < proto::kMaxChunk) {
      size_t next = std::min(kCompareBlock, b.size - end);
      if (memcmp(host + end, b.snapshot.data() + end, next) == 0) break;
      end += next;
    }
    memcpy(b.snapshot.data() + off, host + off, end - off);
    *sent = true;
    if (CUresult r = Send(s, b, off, end - off); r != CUDA_SUCCESS) return r;
    off = end;
  }
  return CUDA_SUCCESS;
}

// Writes into host and snapshot the bytes where `dev` differs from the snapshot.
void Merge(uint8_t* host, uint8_t* snapshot, const uint8_t* dev, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t d, was;
    memcpy(&d, dev + i, 8);
    memcpy(&was, snapshot + i, 8);
    if (d == was) continue;
    for (size_t k = i; k < i + 8; ++k)
      if (dev[k] != snapshot[k]) host[k] = snapshot[k] = dev[k];
  }
  for (; i < n; ++i)
    if (dev[i] != snapshot[i]) host[i] = snapshot[i] = dev[i];
}

// Fetches the mirror after all of its context's work and merges it in.
CUresult Pull(ClientState* s, uintptr_t base, Buffer& b) {
  if (!b.device_newer) return CUDA_SUCCESS;
  if (CUresult r = Post(s, proto::CallId::kCtxSynchronize, proto::CtxSynchronizeReq{b.ctx->id}); r != CUDA_SUCCESS)
    return r;
  for (size_t done = 0; done < b.size;) {
    size_t len = std::min<size_t>(proto::kMaxChunk, b.size - done);
    proto::MemcpyDtoHRep rep;
    CUresult r = Sync(s, proto::CallId::kMemcpyDtoH, proto::MemcpyDtoHReq{b.ctx->id, 0, 0, b.mirror + done, len}, &rep);
    if (r != CUDA_SUCCESS) return r;
    if (rep.data.size() != len) return CUDA_ERROR_UNKNOWN;
    Merge(reinterpret_cast<uint8_t*>(base) + done, b.snapshot.data() + done, rep.data.data(), len);
    done += len;
  }
  b.device_newer = false;
  return CUDA_SUCCESS;
}

}  // namespace

void NoteRegistered(CtxObj* ctx, const void* p, size_t size) {
  std::lock_guard<std::mutex> lock(g_mu);
  Buffer& b = g_buffers[reinterpret_cast<uintptr_t>(p)];
  b = Buffer{};
  b.size = size;
  b.ctx = ctx;
  g_registered_buffers.fetch_add(1, std::memory_order_relaxed);
}

void NoteUnregistered(ClientState* s, const void* p) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_buffers.find(reinterpret_cast<uintptr_t>(p));
  if (it == g_buffers.end()) return;
  Buffer& b = it->second;
  if (b.mirror != 0) {
    // The program reads its buffer after unregistering: the device's last
    // writes must be in it. A failure has been recorded for the next sync.
    (void)Pull(s, it->first, b);
    s->RemoveAllocation(b.mirror);
    (void)Post(s, proto::CallId::kMemFree, proto::MemFreeReq{b.ctx->id, b.mirror});
    g_mirrors.fetch_sub(1, std::memory_order_relaxed);
  }
  g_buffers.erase(it);
  g_registered_buffers.fetch_sub(1, std::memory_order_relaxed);
}

CUresult RegisteredDevicePointer(ClientState* s, const void* p, CUdeviceptr* out) {
  auto a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = FindLocked(a);
  if (it == g_buffers.end() || a - it->first == it->second.size) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = MakeMirror(s, it->first, it->second); r != CUDA_SUCCESS) return r;
  *out = it->second.mirror + (a - it->first);
  return CUDA_SUCCESS;
}

void TranslateRegisteredArgsSlow(ClientState* s, uint8_t* params, size_t n) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_buffers.empty()) return;
  uintptr_t lo = g_buffers.begin()->first;
  uintptr_t hi = g_buffers.rbegin()->first + g_buffers.rbegin()->second.size;
  for (size_t off = 0; off + 8 <= n; off += 8) {
    uint64_t v;
    memcpy(&v, params + off, 8);
    if (v < lo || v > hi) continue;
    auto it = FindLocked(v);
    if (it == g_buffers.end()) continue;
    // The worker's device addresses and this process's host addresses are
    // separate spaces that may overlap: a word that names device memory of
    // this session is a device pointer, left alone.
    if (s->FindAllocation(v, nullptr, nullptr)) continue;
    // A launch cannot fail for this: without a mirror the kernel gets the
    // host pointer, as before, and faults on the GPU host.
    if (MakeMirror(s, it->first, it->second) != CUDA_SUCCESS) continue;
    uint64_t moved = it->second.mirror + (v - it->first);
    memcpy(params + off, &moved, 8);
  }
}

CUresult RegisteredBeforeDeviceWork(ClientState* s) {
  if (g_mirrors.load(std::memory_order_relaxed) == 0) [[likely]]
    return CUDA_SUCCESS;
  std::lock_guard<std::mutex> lock(g_mu);
  for (auto& [base, b] : g_buffers) {
    if (b.mirror == 0) continue;
    bool sent = false;
    if (CUresult r = Push(s, base, b, &sent); r != CUDA_SUCCESS) return r;
    if (sent) {
      if (CUresult r = OrderAfterLegacyCopies(s, b.ctx); r != CUDA_SUCCESS) return r;
    }
  }
  return CUDA_SUCCESS;
}

void RegisteredAfterDeviceWork() {
  if (g_mirrors.load(std::memory_order_relaxed) == 0) [[likely]]
    return;
  std::lock_guard<std::mutex> lock(g_mu);
  for (auto& [base, b] : g_buffers)
    if (b.mirror != 0) b.device_newer = true;
}

CUresult RegisteredAfterSync(ClientState* s) {
  if (g_mirrors.load(std::memory_order_relaxed) == 0) [[likely]]
    return CUDA_SUCCESS;
  std::lock_guard<std::mutex> lock(g_mu);
  for (auto& [base, b] : g_buffers)
    if (CUresult r = Pull(s, base, b); r != CUDA_SUCCESS) return r;
  return CUDA_SUCCESS;
}

bool IsRegisteredMirror(CUdeviceptr p) {
  if (g_mirrors.load(std::memory_order_relaxed) == 0) [[likely]]
    return false;
  std::lock_guard<std::mutex> lock(g_mu);
  for (const auto& [base, b] : g_buffers)
    if (b.mirror != 0 && p - b.mirror < b.size) return true;
  return false;
}

}  // namespace rgpu::client
