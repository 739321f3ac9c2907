// The client's model of graphs built node by node: node parameters, copies,
// and how a model becomes a graph on the worker (client/graph_model.h).
#include "client/graph_model.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <queue>
#include <unordered_map>

#include "client/api_common.h"
#include "client/managed_memory.h"
#include "client/pinned_memory.h"
#include "client/registered_memory.h"
#include "client/unsupported.h"

namespace proto = rgpu::proto;

namespace rgpu::client {

CUresult PackKernelParams(const FuncObj* f, void** params, void** extra, std::vector<uint8_t>* out);

namespace {
using Lock = std::lock_guard<std::mutex>;
}  // namespace

GraphModel* ModelOf(ClientState* s, CUgraph h) {
  GraphObj* g = s->FindGraph(h);
  return g == nullptr ? nullptr : g->model.get();
}

// The graph handle is valid but was made by stream capture.
bool IsCaptured(ClientState* s, CUgraph h) {
  GraphObj* g = s->FindGraph(h);
  return g != nullptr && g->model == nullptr;
}

GraphNode* LiveNode(ClientState* s, CUgraphNode h) {
  if (h == nullptr || !s->graph_nodes().live.count(h)) return nullptr;
  return reinterpret_cast<GraphNode*>(h);
}

CUgraphNode Handle(const GraphNode* n) { return reinterpret_cast<CUgraphNode>(const_cast<GraphNode*>(n)); }

// ---- node parameters ------------------------------------------------------

CUresult SetKernel(ClientState* s, GraphNode* n, CUfunction func, CUkernel kern, const unsigned* grid,
                   const unsigned* block, unsigned shmem, void** kp, void** extra) {
  CUfunction h = func != nullptr ? func : reinterpret_cast<CUfunction>(kern);
  FuncObj* f = h == nullptr ? nullptr : s->FindFunc(h);
  if (f == nullptr) return CUDA_ERROR_INVALID_VALUE;
  for (int i = 0; i < 3; ++i)
    if (grid[i] == 0 || block[i] == 0) return CUDA_ERROR_INVALID_VALUE;
  std::vector<uint8_t> packed;
  if (CUresult r = PackKernelParams(f, kp, extra, &packed); r != CUDA_SUCCESS) return r;
  // Pinned host buffers the kernel is given are promoted now: the graph's
  // launches send no parameters (client/pinned_memory.h).
  PromotePinnedArgs(s, packed.data(), packed.size());
  // And registered memory gets its mirror (client/registered_memory.h).
  TranslateRegisteredArgs(s, packed.data(), packed.size());
  n->func = h;
  n->given_func = func;
  n->given_kern = kern;
  std::copy(grid, grid + 3, n->grid);
  std::copy(block, block + 3, n->block);
  n->shmem = shmem;
  n->params = std::move(packed);
  n->param_ptrs.clear();
  for (const auto& [offset, size] : f->params) n->param_ptrs.push_back(n->params.data() + offset);
  return CUDA_SUCCESS;
}

// param_ptrs point into params: after a copy they must point into the copy.
void RebindParams(GraphNode* n, const GraphNode& from) {
  for (size_t i = 0; i < n->param_ptrs.size(); ++i)
    n->param_ptrs[i] = n->params.data() + (static_cast<uint8_t*>(from.param_ptrs[i]) - from.params.data());
}

bool OnDevice(ClientState* s, CUdeviceptr p, uint64_t n) {
  return IsManaged(p) || s->CoveredByAllocations(p, n ? n : 1);
}

CUresult SetMemset(ClientState* s, GraphNode* n, const CUDA_MEMSET_NODE_PARAMS* p) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  unsigned e = p->elementSize;
  if ((e != 1 && e != 2 && e != 4) || p->width == 0 || p->height == 0) return CUDA_ERROR_INVALID_VALUE;
  if (p->height > 1 && p->pitch < p->width * e) return CUDA_ERROR_INVALID_VALUE;
  uint64_t extent = p->height > 1 ? p->pitch * (p->height - 1) + p->width * e : p->width * e;
  if (p->dst % e != 0 || !OnDevice(s, p->dst, extent)) return CUDA_ERROR_INVALID_VALUE;
  n->memset = *p;
  return CUDA_SUCCESS;
}

// Whether one side of a copy is host memory (a graph copying it runs on the
// client: ExecModel::direct).
bool HostSide(ClientState* s, CUmemorytype type, CUdeviceptr dev) {
  if (type == CU_MEMORYTYPE_HOST) return true;
  return type == CU_MEMORYTYPE_UNIFIED && !OnDevice(s, dev, 1);  // a unified address of host memory
}

CUresult SetMemcpy(ClientState* s, GraphNode* n, const CUDA_MEMCPY3D* p) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (p->srcMemoryType == CU_MEMORYTYPE_ARRAY || p->dstMemoryType == CU_MEMORYTYPE_ARRAY)
    return ReportUnsupported("cuGraphAddMemcpyNode with CUDA arrays");
  for (auto [type, host, dev] : {std::tuple{p->srcMemoryType, static_cast<const void*>(p->srcHost), p->srcDevice},
                                  std::tuple{p->dstMemoryType, static_cast<const void*>(p->dstHost), p->dstDevice}}) {
    CUdeviceptr ptr = type == CU_MEMORYTYPE_HOST ? reinterpret_cast<CUdeviceptr>(host) : dev;
    if (type != CU_MEMORYTYPE_HOST && type != CU_MEMORYTYPE_DEVICE && type != CU_MEMORYTYPE_UNIFIED)
      return CUDA_ERROR_INVALID_VALUE;
    if (ptr == 0) return CUDA_ERROR_INVALID_VALUE;
    if (type == CU_MEMORYTYPE_DEVICE && !OnDevice(s, ptr, 1)) return CUDA_ERROR_INVALID_VALUE;
  }
  n->copy = *p;
  return CUDA_SUCCESS;
}

CUresult SetHost(GraphNode* n, const CUDA_HOST_NODE_PARAMS* p) {
  if (p == nullptr || p->fn == nullptr) return CUDA_ERROR_INVALID_VALUE;
  n->host = *p;
  return CUDA_SUCCESS;
}

CUresult SetEvent(ClientState* s, GraphNode* n, CUevent e) {
  if (s->FindEvent(e) == nullptr) return CUDA_ERROR_INVALID_VALUE;
  n->event = e;
  return CUDA_SUCCESS;
}

// ---- copies ---------------------------------------------------------------

std::shared_ptr<GraphModel> Clone(const GraphModel& m, bool set_origin) {
  auto out = std::make_shared<GraphModel>();
  out->ctx = m.ctx;
  std::unordered_map<const GraphNode*, GraphNode*> map;
  for (const auto& n : m.nodes) {
    auto c = std::make_unique<GraphNode>(*n);
    c->owner = out.get();
    if (set_origin) c->origin = n.get();
    RebindParams(c.get(), *n);
    if (n->child) c->child = Clone(*n->child, false);
    c->child_handle = nullptr;  // the copy's graph has no handle yet
    map[n.get()] = c.get();
    out->nodes.push_back(std::move(c));
  }
  for (auto& c : out->nodes)
    for (GraphNode*& d : c->deps) d = map[d];
  return out;
}

// Copies the parameters of `from` (same type) into `to`, keeping its edges.
void CopyParams(GraphNode* to, const GraphNode& from) {
  to->func = from.func;
  to->given_func = from.given_func;
  to->given_kern = from.given_kern;
  std::copy(from.grid, from.grid + 3, to->grid);
  std::copy(from.block, from.block + 3, to->block);
  to->shmem = from.shmem;
  to->params = from.params;
  to->param_ptrs = from.param_ptrs;
  RebindParams(to, from);
  to->memset = from.memset;
  to->copy = from.copy;
  to->host = from.host;
  to->child = from.child ? Clone(*from.child, false) : nullptr;
  to->event = from.event;
  to->attrs = from.attrs;
}

// ---- realising a model on the worker --------------------------------------

// The nodes in a topological order (creation order among ready nodes), child
// graphs expanded in place. False on a cycle.
bool Flatten(const GraphModel& m, std::vector<const GraphNode*>* out) {
  size_t n = m.nodes.size();
  std::unordered_map<const GraphNode*, size_t> index;
  for (size_t i = 0; i < n; ++i) index[m.nodes[i].get()] = i;
  std::vector<size_t> pending(n);
  std::vector<std::vector<size_t>> dependents(n);
  for (size_t i = 0; i < n; ++i) {
    pending[i] = m.nodes[i]->deps.size();
    for (const GraphNode* d : m.nodes[i]->deps) dependents[index.at(d)].push_back(i);
  }
  std::priority_queue<size_t, std::vector<size_t>, std::greater<size_t>> ready;
  for (size_t i = 0; i < n; ++i)
    if (pending[i] == 0) ready.push(i);
  size_t emitted = 0;
  while (!ready.empty()) {
    size_t i = ready.top();
    ready.pop();
    ++emitted;
    const GraphNode* node = m.nodes[i].get();
    if (node->type == CU_GRAPH_NODE_TYPE_GRAPH) {
      if (!Flatten(*node->child, out)) return false;
    } else {
      out->push_back(node);
    }
    for (size_t j : dependents[i])
      if (--pending[j] == 0) ready.push(j);
  }
  return emitted == n;  // fewer: a cycle
}

// Issues node n on stream st: into a capture (Realize) or, for a graph that
// runs on the client, as ordinary stream work (LaunchDirect).
CUresult Emit(const GraphNode& n, CUstream st, bool capturing) {
  if (!n.enabled) return CUDA_SUCCESS;  // a disabled node does nothing
  switch (n.type) {
    case CU_GRAPH_NODE_TYPE_KERNEL: {
      size_t size = n.params.size();
      void* extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, const_cast<uint8_t*>(n.params.data()),
                       CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_END};
      if (!n.attrs.empty()) {  // cuGraphKernelNodeSetAttribute: launch with them
        std::vector<CUlaunchAttribute> attrs;
        for (const auto& [id, value] : n.attrs) {
          CUlaunchAttribute a{};
          a.id = static_cast<CUlaunchAttributeID>(id);
          a.value = value;
          attrs.push_back(a);
        }
        CUlaunchConfig cfg{};
        cfg.gridDimX = n.grid[0], cfg.gridDimY = n.grid[1], cfg.gridDimZ = n.grid[2];
        cfg.blockDimX = n.block[0], cfg.blockDimY = n.block[1], cfg.blockDimZ = n.block[2];
        cfg.sharedMemBytes = n.shmem;
        cfg.hStream = st;
        cfg.attrs = attrs.data();
        cfg.numAttrs = static_cast<unsigned>(attrs.size());
        return cuLaunchKernelEx(&cfg, n.func, nullptr, size ? extra : nullptr);
      }
      return cuLaunchKernel(n.func, n.grid[0], n.grid[1], n.grid[2], n.block[0], n.block[1], n.block[2],
                            n.shmem, st, nullptr, size ? extra : nullptr);
    }
    case CU_GRAPH_NODE_TYPE_MEMSET: {
      const CUDA_MEMSET_NODE_PARAMS& p = n.memset;
      if (p.height == 1) {
        if (p.elementSize == 1) return cuMemsetD8Async(p.dst, static_cast<unsigned char>(p.value), p.width, st);
        if (p.elementSize == 2) return cuMemsetD16Async(p.dst, static_cast<unsigned short>(p.value), p.width, st);
        return cuMemsetD32Async(p.dst, p.value, p.width, st);
      }
      if (p.elementSize == 1)
        return cuMemsetD2D8Async(p.dst, p.pitch, static_cast<unsigned char>(p.value), p.width, p.height, st);
      if (p.elementSize == 2)
        return cuMemsetD2D16Async(p.dst, p.pitch, static_cast<unsigned short>(p.value), p.width, p.height, st);
      return cuMemsetD2D32Async(p.dst, p.pitch, p.value, p.width, p.height, st);
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
      return cuMemcpy3DAsync_v2(&n.copy, st);
    case CU_GRAPH_NODE_TYPE_HOST:
      return cuLaunchHostFunc(st, n.host.fn, n.host.userData);
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
      return cuEventRecordWithFlags(n.event, st, capturing ? CU_EVENT_RECORD_EXTERNAL : 0);
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
      return cuStreamWaitEvent(st, n.event, capturing ? CU_EVENT_WAIT_EXTERNAL : 0);
    case CU_GRAPH_NODE_TYPE_EMPTY:
    case CU_GRAPH_NODE_TYPE_MEM_ALLOC:  // allocated when the node was added (api_graph_mem.cc)
    case CU_GRAPH_NODE_TYPE_MEM_FREE:   // freed when the graphs holding it go
      return CUDA_SUCCESS;
    default:
      return CUDA_ERROR_NOT_SUPPORTED;
  }
}

// Captures m's nodes on a private stream of its context and instantiates the
// captured graph as worker exec `exec_id`. The registry lock is held.
CUresult Realize(ClientState* s, const GraphModel& m, uint64_t exec_id, unsigned long long flags) {
  std::vector<const GraphNode*> order;
  if (!Flatten(m, &order)) return CUDA_ERROR_INVALID_VALUE;  // a cycle
  return InContext(m.ctx, [&] {
    CUstream st = nullptr;
    CUresult r = cuStreamCreate(&st, CU_STREAM_NON_BLOCKING);
    if (r == CUDA_SUCCESS) r = cuStreamBeginCapture_v2(st, CU_STREAM_CAPTURE_MODE_RELAXED);
    if (r == CUDA_SUCCESS) {
      CUresult emitted = CUDA_SUCCESS;
      for (const GraphNode* n : order)
        if ((emitted = Emit(*n, st, true)) != CUDA_SUCCESS) break;
      CUgraph captured = nullptr;
      r = cuStreamEndCapture(st, &captured);
      if (emitted != CUDA_SUCCESS) r = emitted;
      if (r == CUDA_SUCCESS) {
        GraphObj* g = s->FindGraph(captured);
        r = g == nullptr ? CUDA_ERROR_UNKNOWN
                         : Sync(s, proto::CallId::kGraphInstantiate,
                                proto::GraphInstantiateReq{m.ctx->id, g->id, exec_id, flags});
      }
      if (captured != nullptr) cuGraphDestroy(captured);
    }
    if (st != nullptr) cuStreamDestroy_v2(st);
    return r;
  });
}

// ---- exec update ----------------------------------------------------------

// Same node count, types and edges (nodes paired in creation order).
CUgraphExecUpdateResult Compare(const GraphModel& a, const GraphModel& b, const GraphNode** err,
                                const GraphNode** err_from) {
  if (a.nodes.size() != b.nodes.size()) return CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED;
  std::unordered_map<const GraphNode*, size_t> ia, ib;
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    ia[a.nodes[i].get()] = i;
    ib[b.nodes[i].get()] = i;
  }
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    const GraphNode& x = *a.nodes[i];
    const GraphNode& y = *b.nodes[i];
    *err = &y;
    if (x.type != y.type) return CU_GRAPH_EXEC_UPDATE_ERROR_NODE_TYPE_CHANGED;
    if (x.deps.size() != y.deps.size()) return CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED;
    for (size_t k = 0; k < x.deps.size(); ++k) {
      if (ia[x.deps[k]] != ib[y.deps[k]]) {
        *err_from = y.deps[k];
        return CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED;
      }
    }
    if (x.type == CU_GRAPH_NODE_TYPE_GRAPH) {
      const GraphNode* e1 = nullptr;
      const GraphNode* e2 = nullptr;
      if (CUgraphExecUpdateResult r = Compare(*x.child, *y.child, &e1, &e2); r != CU_GRAPH_EXEC_UPDATE_SUCCESS)
        return r;
    }
  }
  *err = nullptr;
  return CU_GRAPH_EXEC_UPDATE_SUCCESS;
}

// cuGraphNodeSetParams / cuGraphExecNodeSetParams: the generic parameters
// of a node of the same type (of the types this file supports).
CUresult SetGeneric(ClientState* s, GraphNode* n, const CUgraphNodeParams* p) {
  if (p == nullptr || p->type != n->type) return CUDA_ERROR_INVALID_VALUE;
  switch (p->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL:
      return SetKernelFrom(s, n, &p->kernel, p->kernel.kern);
    case CU_GRAPH_NODE_TYPE_MEMSET: {
      CUDA_MEMSET_NODE_PARAMS m{p->memset.dst, p->memset.pitch, p->memset.value, p->memset.elementSize,
                                p->memset.width, p->memset.height};
      return SetMemset(s, n, &m);
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY:
      if (p->memcpy.flags != 0 || p->memcpy.reserved != 0) return CUDA_ERROR_INVALID_VALUE;
      return SetMemcpy(s, n, &p->memcpy.copyParams);
    case CU_GRAPH_NODE_TYPE_HOST: {
      CUDA_HOST_NODE_PARAMS h{p->host.fn, p->host.userData};
      return SetHost(n, &h);
    }
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
      return SetEvent(s, n, p->eventRecord.event);
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
      return SetEvent(s, n, p->eventWait.event);
    default:
      return ReportUnsupported("cuGraphNodeSetParams / cuGraphExecNodeSetParams for this node type");
  }
}

CUresult ChildGraph(ClientState* s, CUgraph child, std::shared_ptr<GraphModel>* out) {
  GraphModel* m = ModelOf(s, child);
  if (m == nullptr)
    return IsCaptured(s, child) ? ReportUnsupported("cuGraphAddChildGraphNode with a graph made by stream capture")
                                : CUDA_ERROR_INVALID_VALUE;
  // A child graph may not hold memory nodes (cuda.h, cuGraphAddChildGraphNode).
  for (const auto& n : m->nodes)
    if (n->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC || n->type == CU_GRAPH_NODE_TYPE_MEM_FREE)
      return CUDA_ERROR_INVALID_VALUE;
  *out = Clone(*m, false);
  return CUDA_SUCCESS;
}


// Whether any copy of m (child graphs included) has a host side.
bool HasHostCopy(ClientState* s, const GraphModel& m) {
  for (const auto& n : m.nodes) {
    if (n->type == CU_GRAPH_NODE_TYPE_GRAPH && HasHostCopy(s, *n->child)) return true;
    if (n->type != CU_GRAPH_NODE_TYPE_MEMCPY) continue;
    const CUDA_MEMCPY3D& c = n->copy;
    if (HostSide(s, c.srcMemoryType, c.srcDevice) || HostSide(s, c.dstMemoryType, c.dstDevice))
      return true;
  }
  return false;
}

CUresult InstantiateModel(ClientState* s, GraphObj* g, ExecObj* e, unsigned long long flags) {
  Lock lock(s->graph_nodes().mu);
  auto model = std::make_shared<ExecModel>();
  model->source = g->model.get();
  model->snapshot = Clone(*g->model, true);
  model->flags = flags;
  model->direct = HasHostCopy(s, *model->snapshot);
  if (!model->direct)
    if (CUresult r = Realize(s, *model->snapshot, e->id, flags); r != CUDA_SUCCESS) return r;
  e->model = std::move(model);
  return CUDA_SUCCESS;
}

CUresult PrepareExecLaunch(ClientState* s, ExecObj* e) {
  if (e->model == nullptr) return CUDA_SUCCESS;
  Lock lock(s->graph_nodes().mu);
  if (!e->model->dirty) return CUDA_SUCCESS;
  // Launches already queued keep the old executable graph until it finishes
  // (cuGraphExecDestroy frees an executable graph in flight on completion).
  bool had_worker_graph = !e->model->direct;
  e->model->dirty = false;
  if (HasHostCopy(s, *e->model->snapshot)) {
    e->model->direct = true;
    if (!had_worker_graph) return CUDA_SUCCESS;
    return Post(s, proto::CallId::kGraphExecDestroy, proto::GraphExecDestroyReq{e->ctx->id, e->id});
  }
  uint64_t id = s->NewId();
  if (CUresult r = Realize(s, *e->model->snapshot, id, e->model->flags); r != CUDA_SUCCESS) {
    e->model->dirty = true;
    return r;
  }
  CUresult r = CUDA_SUCCESS;
  if (had_worker_graph)
    r = Post(s, proto::CallId::kGraphExecDestroy, proto::GraphExecDestroyReq{e->ctx->id, e->id});
  e->id = id;
  e->model->direct = false;
  return r;
}

CUresult LaunchDirect(ClientState* s, ExecObj* e, CUstream st) {
  Lock lock(s->graph_nodes().mu);
  std::vector<const GraphNode*> order;
  if (!Flatten(*e->model->snapshot, &order)) return CUDA_ERROR_INVALID_VALUE;
  return InContext(e->ctx, [&] {
    for (const GraphNode* n : order)
      if (CUresult r = Emit(*n, st, false); r != CUDA_SUCCESS) return r;
    return CUDA_SUCCESS;
  });
}

namespace {
void ForgetNodes(ClientState* s, GraphModel& m) {
  for (const auto& n : m.nodes) {
    s->graph_nodes().live.erase(n.get());
    ForgetChildHandle(s, n.get());
  }
}
}  // namespace

void ForgetChildHandle(ClientState* s, GraphNode* n) {
  if (n->child_handle == nullptr) return;
  if (n->child) ForgetNodes(s, *n->child);
  s->DropGraph(n->child_handle);
  n->child_handle = nullptr;
}

void ForgetGraphModel(ClientState* s, GraphObj* g) {
  if (g->model == nullptr) return;
  Lock lock(s->graph_nodes().mu);
  ForgetNodes(s, *g->model);
}

}  // namespace rgpu::client
