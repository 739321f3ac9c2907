// Exported driver functions on the client's graph model beyond building it
// (client/graph_model.h): kernel node attributes, a child graph node's
// graph, cuGraphDebugDotPrint, user objects, and the lifetime of memory a
// stream capture allocated or freed.
//
// Kernel node attributes (cuGraphKernelNode{Get,Set,Copy}Attribute) are kept
// on the node and applied when the node is replayed into the worker's
// capture (a cuLaunchKernelEx with those attributes), so they cost no round
// trip. Attributes the driver allows on kernel nodes are accepted, but for
// CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE (device-side graph
// updates need the node handle on the GPU), refused and logged once.
// An attribute never set reads as zero.
//
// User objects (cuUserObjectCreate/Retain/Release, cuGraphRetain/
// ReleaseUserObject) live on the client, where their destructors must run:
// a graph holds its references until cuGraphDestroy, and an executable
// graph holds a copy of its graph's references from instantiation until
// cuGraphExecDestroy. When the last reference goes the destructor is called
// on the calling thread, after the locks here are released (the driver
// calls it from its own thread; either way it may not call CUDA). Unlike the
// driver, rgpu does not wait for launches of a destroyed executable graph
// still in flight before dropping its references.
//
// Memory and capture: a cuMemFreeAsync captured into a graph must not free
// the memory at capture time, since every launch of the graph may still use
// it. rgpu allocates at cuMemAllocAsync time (also in a capture) and defers
// a captured free until the graph made by that capture and every executable
// graph instantiated from it are destroyed; a cuMemFree of memory that a
// capture allocated is deferred the same way while such a graph lives.
//
// Threading: everything here takes ClientState::graph_nodes().mu, except
// where a comment says the caller holds it.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "client/api_common.h"
#include "client/graph_model.h"
#include "client/unsupported.h"

using namespace rgpu::client;
namespace proto = rgpu::proto;

namespace rgpu::client {

namespace {

using Lock = std::lock_guard<std::mutex>;

struct UserObj {
  void* ptr = nullptr;
  CUhostFn destroy = nullptr;
  uint64_t refs = 0;
};

// A destructor to run once the lock is released.
struct Pending {
  CUhostFn fn = nullptr;
  void* ptr = nullptr;
};

UserObj* FindUserObj(ClientState* s, const void* h) {
  return h != nullptr && s->graph_nodes().user_objects.count(h) ? static_cast<UserObj*>(const_cast<void*>(h))
                                                                 : nullptr;
}

// Drops n references of o; the lock is held. Its destructor is queued on
// *out when none is left.
void Unref(ClientState* s, UserObj* o, uint64_t n, std::vector<Pending>* out) {
  o->refs -= std::min(n, o->refs);
  if (o->refs != 0) return;
  s->graph_nodes().user_objects.erase(o);
  out->push_back({o->destroy, o->ptr});
  delete o;
}

void RunPending(const std::vector<Pending>& p) {
  for (const Pending& d : p)
    if (d.fn != nullptr) d.fn(d.ptr);
}

void ReleaseRefs(ClientState* s, std::map<const void*, unsigned>* refs, std::vector<Pending>* out) {
  for (const auto& [h, n] : *refs)
    if (UserObj* o = FindUserObj(s, h)) Unref(s, o, n, out);
  refs->clear();
}

// Frees the captured memory if `mem` was its last holder (no lock held).
void ReleaseCapturedMem(ClientState* s, std::shared_ptr<CapturedMem> mem) {
  if (mem == nullptr) return;
  std::vector<CUdeviceptr> frees;
  {
    Lock lock(s->graph_nodes().mu);
    if (mem.use_count() != 1) return;  // another graph or executable graph still holds it
    frees = std::move(mem->frees);
    auto& allocs = s->graph_nodes().capture_allocs;
    for (auto it = allocs.begin(); it != allocs.end();) {
      auto held = it->second.lock();
      if (held == nullptr || held == mem) it = allocs.erase(it);
      else ++it;
    }
  }
  mem.reset();
  for (CUdeviceptr p : frees) cuMemFree_v2(p);
}

// The kernel node attributes the driver accepts on graph nodes.
bool NodeAttr(uint32_t a) {
  switch (a) {
    case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW: case CU_LAUNCH_ATTRIBUTE_COOPERATIVE:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION: case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
    case CU_LAUNCH_ATTRIBUTE_PRIORITY: case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN: case CU_LAUNCH_ATTRIBUTE_PREFERRED_CLUSTER_DIMENSION:
    case CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE: case CU_LAUNCH_ATTRIBUTE_NVLINK_UTIL_CENTRIC_SCHEDULING:
      return true;
    default:
      return false;
  }
}

GraphNode* KernelNode(ClientState* s, CUgraphNode h) {
  GraphNode* n = LiveNode(s, h);
  return n != nullptr && n->type == CU_GRAPH_NODE_TYPE_KERNEL ? n : nullptr;
}

// ---- cuGraphDebugDotPrint -------------------------------------------------

const char* TypeName(CUgraphNodeType t) {
  switch (t) {
    case CU_GRAPH_NODE_TYPE_KERNEL: return "KERNEL";
    case CU_GRAPH_NODE_TYPE_MEMCPY: return "MEMCPY";
    case CU_GRAPH_NODE_TYPE_MEMSET: return "MEMSET";
    case CU_GRAPH_NODE_TYPE_HOST: return "HOST";
    case CU_GRAPH_NODE_TYPE_GRAPH: return "GRAPH";
    case CU_GRAPH_NODE_TYPE_EMPTY: return "EMPTY";
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT: return "WAIT_EVENT";
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD: return "EVENT_RECORD";
    case CU_GRAPH_NODE_TYPE_MEM_ALLOC: return "MEM_ALLOC";
    case CU_GRAPH_NODE_TYPE_MEM_FREE: return "MEM_FREE";
    default: return "OTHER";
  }
}

std::string Hex(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

// One node's label: its type and, with `params`, its parameters.
std::string Label(ClientState* s, const GraphNode& n, bool params) {
  std::string l = TypeName(n.type);
  if (!params) return l;
  switch (n.type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
      FuncObj* f = s->FindFunc(n.func);
      l += "\\n" + (f ? f->name : std::string("?")) + "\\n<<<(" + std::to_string(n.grid[0]) + "," +
           std::to_string(n.grid[1]) + "," + std::to_string(n.grid[2]) + "),(" + std::to_string(n.block[0]) + "," +
           std::to_string(n.block[1]) + "," + std::to_string(n.block[2]) + ")," + std::to_string(n.shmem) + ">>>";
      for (const auto& [id, v] : n.attrs) l += "\\nattr " + std::to_string(id);
      break;
    }
    case CU_GRAPH_NODE_TYPE_MEMSET:
      l += "\\ndst " + Hex(n.memset.dst) + " value " + Hex(n.memset.value) + " elem " +
           std::to_string(n.memset.elementSize) + " " + std::to_string(n.memset.width) + "x" +
           std::to_string(n.memset.height);
      break;
    case CU_GRAPH_NODE_TYPE_MEMCPY:
      l += "\\n" + Hex(n.copy.srcDevice) + " -> " + Hex(n.copy.dstDevice) + " " + std::to_string(n.copy.WidthInBytes) +
           "x" + std::to_string(n.copy.Height) + "x" + std::to_string(n.copy.Depth);
      break;
    case CU_GRAPH_NODE_TYPE_HOST:
      l += "\\nfn " + Hex(reinterpret_cast<uintptr_t>(n.host.fn));
      break;
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD: case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
      l += "\\nevent " + Hex(reinterpret_cast<uintptr_t>(n.event));
      break;
    case CU_GRAPH_NODE_TYPE_MEM_ALLOC:
      l += "\\n" + Hex(n.mem_alloc.dptr) + " " + std::to_string(n.mem_alloc.bytesize) + " bytes";
      break;
    case CU_GRAPH_NODE_TYPE_MEM_FREE:
      l += "\\n" + Hex(n.mem_free);
      break;
    default: break;
  }
  return l;
}

// Writes graph m as a cluster of the DOT text; child graphs nest.
void Dot(ClientState* s, const GraphModel& m, const std::string& prefix, bool params, std::string* out) {
  std::unordered_map<const GraphNode*, std::string> names;
  for (size_t i = 0; i < m.nodes.size(); ++i) names[m.nodes[i].get()] = prefix + "node_" + std::to_string(i);
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    const GraphNode& n = *m.nodes[i];
    const std::string& name = names[&n];
    if (n.type == CU_GRAPH_NODE_TYPE_GRAPH && n.child) {
      *out += "subgraph cluster_" + name + " {\nlabel=\"" + name + " GRAPH\";\n";
      *out += name + " [shape=point];\n";
      Dot(s, *n.child, name + "_", params, out);
      *out += "}\n";
    } else {
      *out += name + " [shape=" + (n.type == CU_GRAPH_NODE_TYPE_KERNEL ? "box" : "ellipse") + " label=\"" +
              Label(s, n, params) + "\"];\n";
    }
  }
  for (const auto& n : m.nodes)
    for (const GraphNode* d : n->deps) *out += names[d] + " -> " + names[n.get()] + ";\n";
}

}  // namespace

// ---- lifetime hooks (graph_model.h) ---------------------------------------

void OnInstantiated(ClientState* s, GraphObj* g, ExecObj* e) {
  Lock lock(s->graph_nodes().mu);
  for (const auto& [h, n] : g->user_refs)
    if (UserObj* o = FindUserObj(s, h)) {
      o->refs += n;
      e->user_refs[h] += n;
    }
  e->captured_mem = g->captured_mem;
}

void OnCloned(ClientState* s, GraphObj* from, GraphObj* to) {  // the caller holds the lock
  for (const auto& [h, n] : from->user_refs)
    if (UserObj* o = FindUserObj(s, h)) {
      o->refs += n;
      to->user_refs[h] += n;
    }
  to->captured_mem = from->captured_mem;  // its memory nodes use the same memory
}

// Without references or captured memory there is nothing to do, and no lock
// is taken: graph_model.cc's Realize destroys its scratch graph with the
// registry lock held. (Nothing else changes a graph being destroyed.)
void OnGraphDestroyed(ClientState* s, GraphObj* g) {
  if (g->user_refs.empty() && g->captured_mem == nullptr) return;
  std::vector<Pending> run;
  std::shared_ptr<CapturedMem> mem;
  {
    Lock lock(s->graph_nodes().mu);
    ReleaseRefs(s, &g->user_refs, &run);
    mem = std::move(g->captured_mem);
  }
  ReleaseCapturedMem(s, std::move(mem));
  RunPending(run);
}

void OnExecDestroyed(ClientState* s, ExecObj* e) {
  if (e->user_refs.empty() && e->captured_mem == nullptr) return;
  std::vector<Pending> run;
  std::shared_ptr<CapturedMem> mem;
  {
    Lock lock(s->graph_nodes().mu);
    ReleaseRefs(s, &e->user_refs, &run);
    mem = std::move(e->captured_mem);
  }
  ReleaseCapturedMem(s, std::move(mem));
  RunPending(run);
}

void NoteCaptureAllocLocked(ClientState* s, GraphObj* g, CUdeviceptr p) {
  if (g->captured_mem == nullptr) g->captured_mem = std::make_shared<CapturedMem>();
  GraphNodeRegistry& r = s->graph_nodes();
  r.capture_allocs[p] = g->captured_mem;
  // Counted as graph memory until it is really freed (NoteGraphMemFreed).
  CUdeviceptr base = 0;
  uint64_t size = 0;
  CtxObj* ctx = nullptr;
  if (s->FindAllocation(p, &base, &size, &ctx) && base == p && ctx != nullptr && r.graph_mem.count(p) == 0) {
    r.graph_mem[p] = {ctx->device, size};
    GraphNodeRegistry::GraphMemUse& u = r.graph_mem_use[ctx->device];
    u.used += size;
    u.used_high = std::max(u.used_high, u.used);
    u.reserved_high = std::max(u.reserved_high, u.used);
  }
}

void NoteGraphMemFreed(ClientState* s, CUdeviceptr p) {
  Lock lock(s->graph_nodes().mu);
  GraphNodeRegistry& r = s->graph_nodes();
  auto it = r.graph_mem.find(p);
  if (it == r.graph_mem.end()) return;
  r.graph_mem_use[it->second.first].used -= it->second.second;
  r.graph_mem.erase(it);
}

void NoteCaptureFreeLocked(ClientState* s, GraphObj* g, CUdeviceptr p) {
  if (g->captured_mem == nullptr) g->captured_mem = std::make_shared<CapturedMem>();
  auto& frees = g->captured_mem->frees;
  if (std::find(frees.begin(), frees.end(), p) == frees.end()) frees.push_back(p);
  s->graph_nodes().capture_allocs.erase(p);  // its fate is now this graph's
}

void NoteCaptureAlloc(ClientState* s, GraphObj* g, CUdeviceptr p) {
  Lock lock(s->graph_nodes().mu);
  NoteCaptureAllocLocked(s, g, p);
}

void NoteCaptureFree(ClientState* s, GraphObj* g, CUdeviceptr p) {
  Lock lock(s->graph_nodes().mu);
  NoteCaptureFreeLocked(s, g, p);
}

bool DeferFreeOfCaptureAlloc(ClientState* s, CUdeviceptr p) {
  Lock lock(s->graph_nodes().mu);
  auto& allocs = s->graph_nodes().capture_allocs;
  auto it = allocs.find(p);
  if (it == allocs.end()) return false;
  std::shared_ptr<CapturedMem> mem = it->second.lock();
  allocs.erase(it);
  if (mem == nullptr) return false;
  mem->frees.push_back(p);
  return true;
}

}  // namespace rgpu::client

extern "C" {

// ---- kernel node attributes -----------------------------------------------

CUresult cuGraphKernelNodeSetAttribute(CUgraphNode h, CUkernelNodeAttrID attr, const CUkernelNodeAttrValue* value) {
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  uint32_t a = static_cast<uint32_t>(attr);
  if (!NodeAttr(a)) return CUDA_ERROR_INVALID_VALUE;
  if (a == CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE)
    return ReportUnsupported("cuGraphKernelNodeSetAttribute(CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE)");
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  GraphNode* n = KernelNode(s, h);
  if (n == nullptr) return CUDA_ERROR_INVALID_VALUE;
  n->attrs[a] = *value;
  return CUDA_SUCCESS;
}

CUresult cuGraphKernelNodeGetAttribute(CUgraphNode h, CUkernelNodeAttrID attr, CUkernelNodeAttrValue* value) {
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  uint32_t a = static_cast<uint32_t>(attr);
  if (!NodeAttr(a)) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  GraphNode* n = KernelNode(s, h);
  if (n == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto it = n->attrs.find(a);
  if (it != n->attrs.end()) {
    *value = it->second;
  } else {
    std::memset(value, 0, sizeof *value);
  }
  return CUDA_SUCCESS;
}

CUresult cuGraphKernelNodeCopyAttributes(CUgraphNode dst, CUgraphNode src) {
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  GraphNode* d = KernelNode(s, dst);
  GraphNode* from = KernelNode(s, src);
  if (d == nullptr || from == nullptr) return CUDA_ERROR_INVALID_VALUE;
  d->attrs = from->attrs;
  return CUDA_SUCCESS;
}

// ---- child graph ------------------------------------------------------------

// The graph embedded in the node, not a copy: changes made through the
// handle change the node, which keeps owning the graph (cuda.h).
CUresult cuGraphChildGraphNodeGetGraph(CUgraphNode h, CUgraph* out) {
  if (out == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  GraphNode* n = LiveNode(s, h);
  if (n == nullptr || n->type != CU_GRAPH_NODE_TYPE_GRAPH || n->child == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (n->child_handle == nullptr) {
    auto g = std::make_unique<GraphObj>();
    g->id = s->NewId();
    g->ctx = n->owner->ctx;
    g->model = n->child;
    g->embedded = true;
    for (const auto& c : n->child->nodes) s->graph_nodes().live.insert(c.get());
    n->child_handle = s->AddGraph(std::move(g));
  }
  *out = reinterpret_cast<CUgraph>(n->child_handle);
  return CUDA_SUCCESS;
}

// ---- DOT output -------------------------------------------------------------

CUresult cuGraphDebugDotPrint(CUgraph hg, const char* path, unsigned int flags) {
  if (path == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  std::string text = "digraph dot {\n";
  {
    Lock lock(s->graph_nodes().mu);
    GraphModel* m = ModelOf(s, hg);
    if (m == nullptr)
      return IsCaptured(s, hg) ? ReportUnsupported("cuGraphDebugDotPrint of a graph made by stream capture")
                               : CUDA_ERROR_INVALID_VALUE;
    text += "subgraph cluster_graph {\nlabel=\"graph\";\n";
    bool params = (flags & ~static_cast<unsigned>(CU_GRAPH_DEBUG_DOT_FLAGS_RUNTIME_TYPES)) != 0;
    Dot(s, *m, "graph_", params, &text);
    text += "}\n";
  }
  text += "}\n";
  FILE* f = fopen(path, "w");
  if (f == nullptr) return CUDA_ERROR_OPERATING_SYSTEM;
  bool ok = fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = fclose(f) == 0 && ok;
  return ok ? CUDA_SUCCESS : CUDA_ERROR_OPERATING_SYSTEM;
}

// ---- user objects -----------------------------------------------------------

CUresult cuUserObjectCreate(CUuserObject* out, void* ptr, CUhostFn destroy, unsigned int initialRefcount,
                            unsigned int flags) {
  if (out == nullptr || destroy == nullptr || initialRefcount == 0 || flags != CU_USER_OBJECT_NO_DESTRUCTOR_SYNC)
    return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  auto* o = new UserObj{ptr, destroy, initialRefcount};
  Lock lock(s->graph_nodes().mu);
  s->graph_nodes().user_objects.insert(o);
  *out = reinterpret_cast<CUuserObject>(o);
  return CUDA_SUCCESS;
}

CUresult cuUserObjectRetain(CUuserObject h, unsigned int count) {
  if (count == 0) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  UserObj* o = FindUserObj(s, h);
  if (o == nullptr) return CUDA_ERROR_INVALID_VALUE;
  o->refs += count;
  return CUDA_SUCCESS;
}

CUresult cuUserObjectRelease(CUuserObject h, unsigned int count) {
  if (count == 0) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  std::vector<Pending> run;
  {
    Lock lock(s->graph_nodes().mu);
    UserObj* o = FindUserObj(s, h);
    if (o == nullptr) return CUDA_ERROR_INVALID_VALUE;
    Unref(s, o, count, &run);
  }
  RunPending(run);
  return CUDA_SUCCESS;
}

CUresult cuGraphRetainUserObject(CUgraph hg, CUuserObject h, unsigned int count, unsigned int flags) {
  if (count == 0 || (flags & ~static_cast<unsigned>(CU_GRAPH_USER_OBJECT_MOVE))) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  GraphObj* g = s->FindGraph(hg);
  UserObj* o = FindUserObj(s, h);
  if (g == nullptr || o == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (g->embedded) return ReportUnsupported("cuGraphRetainUserObject on a child graph node's graph");
  // MOVE takes over the caller's references instead of making new ones.
  if (!(flags & CU_GRAPH_USER_OBJECT_MOVE)) o->refs += count;
  g->user_refs[o] += count;
  return CUDA_SUCCESS;
}

CUresult cuGraphReleaseUserObject(CUgraph hg, CUuserObject h, unsigned int count) {
  if (count == 0) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  std::vector<Pending> run;
  {
    Lock lock(s->graph_nodes().mu);
    GraphObj* g = s->FindGraph(hg);
    UserObj* o = FindUserObj(s, h);
    if (g == nullptr || o == nullptr) return CUDA_ERROR_INVALID_VALUE;
    auto it = g->user_refs.find(o);
    // The graph can release only references it holds.
    if (it == g->user_refs.end() || it->second < count) return CUDA_ERROR_INVALID_VALUE;
    if ((it->second -= count) == 0) g->user_refs.erase(it);
    Unref(s, o, count, &run);
  }
  RunPending(run);
  return CUDA_SUCCESS;
}

}  // extern "C"
