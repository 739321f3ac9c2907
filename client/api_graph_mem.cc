// Exported driver functions: memory nodes of graphs built node by node
// (cuGraphAddMemAllocNode, cuGraphAddMemFreeNode, their GetParams, and the
// generic cuGraphAddNode forms, which come here).
//
// The driver allocates an alloc node's memory when the graph runs and keeps
// its virtual address fixed across launches. rgpu allocates it once, when
// the node is added (an ordinary cuMemAlloc in the graph's context: one
// round trip), and replays both node types as nothing: the memory is then
// valid for the whole life of the graph, a superset of what the driver
// guarantees. A free node's memory (and a cuMemFree of an alloc node's
// memory while its graph lives) is freed when the graph and every
// executable graph and clone made from it are destroyed, as for frees
// captured from a stream (client/api_graph_extras.cc). An alloc node with
// no free node leaves its memory to the program, as the driver does.
//
// Refused with CUDA_ERROR_NOT_SUPPORTED, logged once: allocations on another
// device than the graph's context's, shareable handle types, access for
// other devices (peer mappings), and destroying a memory node.
// cuDeviceGetGraphMemAttribute reports the memory of alloc nodes and of
// allocations captured from streams while it is allocated (from the node's
// creation to the real free); there is no pool behind it, so reserved
// equals used, and cuDeviceGraphMemTrim has nothing cached to give back.
#include <cstring>

#include "client/api_common.h"
#include "client/graph_model.h"
#include "client/unsupported.h"

using namespace rgpu::client;

namespace {

// The checks the driver makes on an allocation node's parameters, then
// rgpu's limits. `dev` is the graph's device, `devices` the session's count.
CUresult CheckAlloc(const CUDA_MEM_ALLOC_NODE_PARAMS* p, int dev, int devices) {
  if (p == nullptr || p->bytesize == 0 || (p->accessDescCount != 0 && p->accessDescs == nullptr))
    return CUDA_ERROR_INVALID_VALUE;
  const CUmemPoolProps& pp = p->poolProps;
  if (pp.allocType != CU_MEM_ALLOCATION_TYPE_PINNED || pp.location.type != CU_MEM_LOCATION_TYPE_DEVICE)
    return CUDA_ERROR_INVALID_VALUE;
  if (pp.location.id < 0 || pp.location.id >= devices) return CUDA_ERROR_INVALID_VALUE;
  if (pp.location.id != dev) return ReportUnsupported("cuGraphAddMemAllocNode on another device than the graph's");
  if (pp.handleTypes != CU_MEM_HANDLE_TYPE_NONE)
    return ReportUnsupported("cuGraphAddMemAllocNode with shareable handle types");
  for (size_t i = 0; i < p->accessDescCount; ++i) {
    const CUmemAccessDesc& a = p->accessDescs[i];
    if (a.location.type != CU_MEM_LOCATION_TYPE_DEVICE || a.flags > CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
      return CUDA_ERROR_INVALID_VALUE;
    if (a.location.id != dev) return ReportUnsupported("cuGraphAddMemAllocNode with access for another device");
  }
  return CUDA_SUCCESS;
}

// cuMemAlloc in context c (the registry lock is held; the allocation takes
// no graph lock).
CUresult AllocIn(CtxObj* c, size_t size, CUdeviceptr* out) {
  return InContext(c, [&] { return cuMemAlloc_v2(out, size); });
}

template <class Fn>
CUresult WithMemNode(CUgraphNode h, CUgraphNodeType type, Fn fn) {
  RGPU_STATE_OR_RETURN(s);
  std::lock_guard<std::mutex> lock(s->graph_nodes().mu);
  GraphNode* n = LiveNode(s, h);
  if (n == nullptr || n->type != type) return CUDA_ERROR_INVALID_VALUE;
  return fn(n);
}

}  // namespace

extern "C" {

CUresult cuGraphAddMemAllocNode(CUgraphNode* ph, CUgraph g, const CUgraphNode* deps, size_t n,
                                CUDA_MEM_ALLOC_NODE_PARAMS* p) {
  RGPU_LOG_DEBUG("cuGraphAddMemAllocNode");
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return AddNode("cuGraphAddMemAllocNode", ph, g, deps, n, CU_GRAPH_NODE_TYPE_MEM_ALLOC,
                 [g, p](ClientState* s, GraphNode* node) {
                   GraphObj* go = s->FindGraph(g);
                   CtxObj* c = node->owner->ctx;
                   if (go == nullptr || c == nullptr) return CUDA_ERROR_INVALID_VALUE;
                   if (CUresult r = CheckAlloc(p, c->device, s->device_count()); r != CUDA_SUCCESS) return r;
                   CUdeviceptr dptr = 0;
                   if (CUresult r = AllocIn(c, p->bytesize, &dptr); r != CUDA_SUCCESS) return r;
                   node->mem_alloc = *p;
                   node->mem_alloc.dptr = dptr;
                   node->mem_alloc.accessDescs = nullptr;
                   node->mem_access.assign(p->accessDescs, p->accessDescs + p->accessDescCount);
                   // A cuMemFree of it while the graph lives waits for the graph.
                   NoteCaptureAllocLocked(s, go, dptr);
                   p->dptr = dptr;
                   return CUDA_SUCCESS;
                 });
}

CUresult cuGraphAddMemFreeNode(CUgraphNode* ph, CUgraph g, const CUgraphNode* deps, size_t n, CUdeviceptr dptr) {
  RGPU_LOG_DEBUG("cuGraphAddMemFreeNode");
  return AddNode("cuGraphAddMemFreeNode", ph, g, deps, n, CU_GRAPH_NODE_TYPE_MEM_FREE,
                 [g, dptr](ClientState* s, GraphNode* node) {
                   GraphObj* go = s->FindGraph(g);
                   CUdeviceptr base = 0;
                   if (go == nullptr || dptr == 0 || !s->FindAllocation(dptr, &base, nullptr) || base != dptr)
                     return CUDA_ERROR_INVALID_VALUE;
                   // One free node per allocation in a graph.
                   for (const auto& other : node->owner->nodes)
                     if (other->type == CU_GRAPH_NODE_TYPE_MEM_FREE && other->mem_free == dptr)
                       return CUDA_ERROR_INVALID_VALUE;
                   node->mem_free = dptr;
                   NoteCaptureFreeLocked(s, go, dptr);
                   return CUDA_SUCCESS;
                 });
}

// accessDescs points into the node, valid while the node lives.
CUresult cuGraphMemAllocNodeGetParams(CUgraphNode h, CUDA_MEM_ALLOC_NODE_PARAMS* out) {
  if (out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return WithMemNode(h, CU_GRAPH_NODE_TYPE_MEM_ALLOC, [out](GraphNode* n) {
    *out = n->mem_alloc;
    out->accessDescs = n->mem_access.empty() ? nullptr : n->mem_access.data();
    out->accessDescCount = n->mem_access.size();
    return CUDA_SUCCESS;
  });
}

CUresult cuGraphMemFreeNodeGetParams(CUgraphNode h, CUdeviceptr* out) {
  if (out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return WithMemNode(h, CU_GRAPH_NODE_TYPE_MEM_FREE, [out](GraphNode* n) {
    *out = n->mem_free;
    return CUDA_SUCCESS;
  });
}

namespace {
CUresult GraphMemUse(CUdevice dev, CUgraphMem_attribute attr, void* value, bool set) {
  RGPU_STATE_OR_RETURN(s);
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (dev < 0 || dev >= s->device_count()) return CUDA_ERROR_INVALID_DEVICE;
  std::lock_guard<std::mutex> lock(s->graph_nodes().mu);
  GraphNodeRegistry::GraphMemUse& u = s->graph_nodes().graph_mem_use[dev];
  auto* v = static_cast<cuuint64_t*>(value);
  if (set) {
    // Only the high-water marks can be set, and only back to zero (which
    // restarts them from what is in use now).
    if (*v != 0) return CUDA_ERROR_INVALID_VALUE;
    if (attr == CU_GRAPH_MEM_ATTR_USED_MEM_HIGH) u.used_high = u.used;
    else if (attr == CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH) u.reserved_high = u.used;
    else return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
  }
  switch (attr) {
    case CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT:
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT:
      *v = u.used;
      return CUDA_SUCCESS;
    case CU_GRAPH_MEM_ATTR_USED_MEM_HIGH:
      *v = u.used_high;
      return CUDA_SUCCESS;
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH:
      *v = u.reserved_high;
      return CUDA_SUCCESS;
  }
  return CUDA_ERROR_INVALID_VALUE;
}
}  // namespace

CUresult cuDeviceGetGraphMemAttribute(CUdevice dev, CUgraphMem_attribute attr, void* value) {
  return GraphMemUse(dev, attr, value, false);
}

CUresult cuDeviceSetGraphMemAttribute(CUdevice dev, CUgraphMem_attribute attr, void* value) {
  return GraphMemUse(dev, attr, value, true);
}

CUresult cuDeviceGraphMemTrim(CUdevice dev) {
  RGPU_STATE_OR_RETURN(s);
  if (dev < 0 || dev >= s->device_count()) return CUDA_ERROR_INVALID_DEVICE;
  return CUDA_SUCCESS;  // nothing cached: freed graph memory is freed at once
}

}  // extern "C"
