// Exported driver functions: graphs built node by node (cuGraphCreate,
// cuGraphAdd*Node, edges, node queries and parameters, cuGraphClone,
// cuGraphExec*SetParams, cuGraphExecUpdate). The model and how it reaches
// the worker are described in client/graph_model.h.
//
// What is refused (CUDA_ERROR_NOT_SUPPORTED, logged once by name): memcpy
// nodes with a host side (the host memory is on the client; the node would
// have to read or write it when the graph runs on the GPU host), nodes of
// the other types (external semaphores, batch memory operations,
// conditional; memory nodes are in api_graph_mem.cc), non-default edge
// data, and node-level calls on graphs made by stream capture (their nodes
// live on the worker). Attributes, child graph handles, DOT output and user
// objects are in api_graph_extras.cc.
#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "client/api_common.h"
#include "client/graph_model.h"
#include "client/unsupported.h"

using namespace rgpu::client;
namespace proto = rgpu::proto;

namespace {

using Lock = std::lock_guard<std::mutex>;

// ---- adding nodes ---------------------------------------------------------

}  // namespace

namespace rgpu::client {
CUresult CheckDeps(ClientState* s, GraphModel* m, const CUgraphNode* deps, size_t n, std::vector<GraphNode*>* out) {
  if (n != 0 && deps == nullptr) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < n; ++i) {
    GraphNode* d = LiveNode(s, deps[i]);
    if (d == nullptr || d->owner != m) return CUDA_ERROR_INVALID_VALUE;
    if (std::find(out->begin(), out->end(), d) != out->end()) return CUDA_ERROR_INVALID_VALUE;
    out->push_back(d);
  }
  return CUDA_SUCCESS;
}
}  // namespace rgpu::client

namespace {

// Runs `fn` on a live node of `type` with the registry lock held.
template <class Fn>
CUresult WithNode(CUgraphNode h, CUgraphNodeType type, Fn fn) {
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  GraphNode* n = LiveNode(s, h);
  if (n == nullptr || n->type != type) return CUDA_ERROR_INVALID_VALUE;
  return fn(s, n);
}

// Runs `fn` on the executable graph's copy of node h (of `type`).
template <class Fn>
CUresult WithExecNode(CUgraphExec he, CUgraphNode h, CUgraphNodeType type, Fn fn) {
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  ExecObj* e = s->FindExec(he);
  if (e == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (e->model == nullptr) return ReportUnsupported("cuGraphExec*SetParams on a graph made by stream capture");
  GraphNode* n = LiveNode(s, h);
  if (n == nullptr || n->owner != e->model->source || n->type != type) return CUDA_ERROR_INVALID_VALUE;
  for (auto& c : e->model->snapshot->nodes) {
    if (c->origin != n) continue;
    GraphNode updated = *c;
    RebindParams(&updated, *c);
    if (CUresult r = fn(s, &updated); r != CUDA_SUCCESS) return r;
    CopyParams(c.get(), updated);
    c->enabled = updated.enabled;
    e->model->dirty = true;
    return CUDA_SUCCESS;
  }
  return CUDA_ERROR_INVALID_VALUE;  // added to the graph after instantiation
}

// ---- topology queries -----------------------------------------------------

// Fills out[0..*n) from list (NULL past its end) and sets *n as the driver
// does: the count when out is null, else the number of entries written.
template <class T>
CUresult FillList(const std::vector<T>& list, T* out, size_t* n) {
  if (n == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (out == nullptr) {
    *n = list.size();
    return CUDA_SUCCESS;
  }
  for (size_t i = 0; i < *n; ++i) out[i] = i < list.size() ? list[i] : T{};
  *n = std::min(*n, list.size());
  return CUDA_SUCCESS;
}

void ZeroEdgeData(CUgraphEdgeData* data, size_t n) {
  if (data != nullptr) memset(data, 0, n * sizeof *data);
}

bool DefaultEdges(const CUgraphEdgeData* data, size_t n) {
  if (data == nullptr) return true;
  static const CUgraphEdgeData kZero{};
  for (size_t i = 0; i < n; ++i)
    if (memcmp(&data[i], &kZero, sizeof kZero) != 0) return false;
  return true;
}

CUresult Edges(CUgraph hg, CUgraphNode* from, CUgraphNode* to, CUgraphEdgeData* data, size_t* n) {
  if (n == nullptr || (from == nullptr) != (to == nullptr)) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  GraphModel* m = ModelOf(s, hg);
  if (m == nullptr) return IsCaptured(s, hg) ? ReportUnsupported("cuGraphGetEdges on a graph made by stream capture")
                                             : CUDA_ERROR_INVALID_VALUE;
  std::vector<CUgraphNode> f, t;
  for (const auto& node : m->nodes)
    for (const GraphNode* d : node->deps) {
      f.push_back(Handle(d));
      t.push_back(Handle(node.get()));
    }
  if (from == nullptr) {
    *n = f.size();
    return CUDA_SUCCESS;
  }
  size_t asked = *n;
  FillList(f, from, n);
  size_t ignored = asked;
  FillList(t, to, &ignored);
  ZeroEdgeData(data, asked);
  return CUDA_SUCCESS;
}

CUresult NodeDeps(CUgraphNode h, CUgraphNode* out, CUgraphEdgeData* data, size_t* n, bool dependents) {
  if (n == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  GraphNode* node = LiveNode(s, h);
  if (node == nullptr) return CUDA_ERROR_INVALID_VALUE;
  std::vector<CUgraphNode> list;
  if (!dependents) {
    for (const GraphNode* d : node->deps) list.push_back(Handle(d));
  } else {
    for (const auto& other : node->owner->nodes)
      if (std::find(other->deps.begin(), other->deps.end(), node) != other->deps.end())
        list.push_back(Handle(other.get()));
  }
  if (out != nullptr) ZeroEdgeData(data, *n);
  return FillList(list, out, n);
}

CUresult ChangeDeps(CUgraph hg, const CUgraphNode* from, const CUgraphNode* to, const CUgraphEdgeData* data,
                    size_t n, bool add) {
  if (n != 0 && (from == nullptr || to == nullptr)) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (!DefaultEdges(data, n)) return ReportUnsupported("graph edges with edge data (programmatic dependencies)");
  Lock lock(s->graph_nodes().mu);
  GraphModel* m = ModelOf(s, hg);
  if (m == nullptr) return IsCaptured(s, hg) ? ReportUnsupported("cuGraphAdd/RemoveDependencies on a captured graph")
                                             : CUDA_ERROR_INVALID_VALUE;
  // Check all first: the driver changes nothing when one edge is invalid.
  for (size_t i = 0; i < n; ++i) {
    GraphNode* f = LiveNode(s, from[i]);
    GraphNode* t = LiveNode(s, to[i]);
    if (f == nullptr || t == nullptr || f->owner != m || t->owner != m || f == t) return CUDA_ERROR_INVALID_VALUE;
    bool present = std::find(t->deps.begin(), t->deps.end(), f) != t->deps.end();
    if (present == add) return CUDA_ERROR_INVALID_VALUE;
    for (size_t j = 0; j < i; ++j)
      if (from[j] == from[i] && to[j] == to[i]) return CUDA_ERROR_INVALID_VALUE;
  }
  for (size_t i = 0; i < n; ++i) {
    GraphNode* f = LiveNode(s, from[i]);
    GraphNode* t = LiveNode(s, to[i]);
    if (add) t->deps.push_back(f);
    else t->deps.erase(std::find(t->deps.begin(), t->deps.end(), f));
  }
  return CUDA_SUCCESS;
}

CUresult ExecUpdate(CUgraphExec he, CUgraph hg, CUgraphExecUpdateResultInfo* info) {
  if (info == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *info = CUgraphExecUpdateResultInfo{CU_GRAPH_EXEC_UPDATE_ERROR, nullptr, nullptr};
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  ExecObj* e = s->FindExec(he);
  GraphObj* g = s->FindGraph(hg);
  if (e == nullptr || g == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (e->model == nullptr || g->model == nullptr)
    return ReportUnsupported("cuGraphExecUpdate with a graph made by stream capture");
  const GraphNode* err = nullptr;
  const GraphNode* err_from = nullptr;
  CUgraphExecUpdateResult r = Compare(*e->model->snapshot, *g->model, &err, &err_from);
  info->result = r;
  info->errorNode = err ? Handle(err) : nullptr;
  info->errorFromNode = err_from ? Handle(err_from) : nullptr;
  if (r != CU_GRAPH_EXEC_UPDATE_SUCCESS) return CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
  auto& nodes = e->model->snapshot->nodes;
  for (size_t i = 0; i < nodes.size(); ++i) CopyParams(nodes[i].get(), *g->model->nodes[i]);
  e->model->dirty = true;
  return CUDA_SUCCESS;
}

}  // namespace

extern "C" {

CUresult cuGraphCreate(CUgraph* ph, unsigned int flags) {
  if (ph == nullptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  auto g = std::make_unique<GraphObj>();
  g->id = s->NewId();
  g->ctx = c;
  g->model = std::make_shared<GraphModel>();
  g->model->ctx = c;
  *ph = reinterpret_cast<CUgraph>(s->AddGraph(std::move(g)));
  return CUDA_SUCCESS;
}

CUresult cuGraphClone(CUgraph* ph, CUgraph orig) {
  if (ph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  GraphObj* o = s->FindGraph(orig);
  if (o == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (o->model == nullptr) return ReportUnsupported("cuGraphClone of a graph made by stream capture");
  auto g = std::make_unique<GraphObj>();
  g->id = s->NewId();
  g->ctx = o->ctx;
  g->model = Clone(*o->model, true);
  for (const auto& n : g->model->nodes) s->graph_nodes().live.insert(n.get());
  OnCloned(s, o, g.get());  // the clone holds the original's user-object references
  *ph = reinterpret_cast<CUgraph>(s->AddGraph(std::move(g)));
  return CUDA_SUCCESS;
}

CUresult cuGraphNodeFindInClone(CUgraphNode* ph, CUgraphNode orig, CUgraph clone) {
  if (ph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  GraphModel* m = ModelOf(s, clone);
  if (m == nullptr || orig == nullptr) return CUDA_ERROR_INVALID_VALUE;
  for (const auto& n : m->nodes)
    if (n->origin == reinterpret_cast<const GraphNode*>(orig)) {
      *ph = Handle(n.get());
      return CUDA_SUCCESS;
    }
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGraphAddKernelNode_v2(CUgraphNode* ph, CUgraph g, const CUgraphNode* d, size_t n,
                                 const CUDA_KERNEL_NODE_PARAMS* p) {
  return AddNode("cuGraphAddKernelNode", ph, g, d, n, CU_GRAPH_NODE_TYPE_KERNEL, [p](ClientState* s, GraphNode* node) {
    return SetKernelFrom(s, node, p, p ? p->kern : nullptr);
  });
}
CUresult cuGraphAddKernelNode(CUgraphNode* ph, CUgraph g, const CUgraphNode* d, size_t n,
                              const CUDA_KERNEL_NODE_PARAMS_v1* p) {
  return AddNode("cuGraphAddKernelNode", ph, g, d, n, CU_GRAPH_NODE_TYPE_KERNEL, [p](ClientState* s, GraphNode* node) {
    return SetKernelFrom(s, node, p, nullptr);
  });
}

CUresult cuGraphAddMemsetNode(CUgraphNode* ph, CUgraph g, const CUgraphNode* d, size_t n,
                              const CUDA_MEMSET_NODE_PARAMS* p, CUcontext) {
  return AddNode("cuGraphAddMemsetNode", ph, g, d, n, CU_GRAPH_NODE_TYPE_MEMSET,
                 [p](ClientState* s, GraphNode* node) { return SetMemset(s, node, p); });
}

CUresult cuGraphAddMemcpyNode(CUgraphNode* ph, CUgraph g, const CUgraphNode* d, size_t n, const CUDA_MEMCPY3D* p,
                              CUcontext) {
  return AddNode("cuGraphAddMemcpyNode", ph, g, d, n, CU_GRAPH_NODE_TYPE_MEMCPY,
                 [p](ClientState* s, GraphNode* node) { return SetMemcpy(s, node, p); });
}

CUresult cuGraphAddHostNode(CUgraphNode* ph, CUgraph g, const CUgraphNode* d, size_t n,
                            const CUDA_HOST_NODE_PARAMS* p) {
  return AddNode("cuGraphAddHostNode", ph, g, d, n, CU_GRAPH_NODE_TYPE_HOST,
                 [p](ClientState*, GraphNode* node) { return SetHost(node, p); });
}

CUresult cuGraphAddEmptyNode(CUgraphNode* ph, CUgraph g, const CUgraphNode* d, size_t n) {
  return AddNode("cuGraphAddEmptyNode", ph, g, d, n, CU_GRAPH_NODE_TYPE_EMPTY,
                 [](ClientState*, GraphNode*) { return CUDA_SUCCESS; });
}

CUresult cuGraphAddChildGraphNode(CUgraphNode* ph, CUgraph g, const CUgraphNode* d, size_t n, CUgraph child) {
  return AddNode("cuGraphAddChildGraphNode", ph, g, d, n, CU_GRAPH_NODE_TYPE_GRAPH,
                 [child](ClientState* s, GraphNode* node) { return ChildGraph(s, child, &node->child); });
}

CUresult cuGraphAddEventRecordNode(CUgraphNode* ph, CUgraph g, const CUgraphNode* d, size_t n, CUevent ev) {
  return AddNode("cuGraphAddEventRecordNode", ph, g, d, n, CU_GRAPH_NODE_TYPE_EVENT_RECORD,
                 [ev](ClientState* s, GraphNode* node) { return SetEvent(s, node, ev); });
}

CUresult cuGraphAddEventWaitNode(CUgraphNode* ph, CUgraph g, const CUgraphNode* d, size_t n, CUevent ev) {
  return AddNode("cuGraphAddEventWaitNode", ph, g, d, n, CU_GRAPH_NODE_TYPE_WAIT_EVENT,
                 [ev](ClientState* s, GraphNode* node) { return SetEvent(s, node, ev); });
}

// The generic form (CUDA 12.2+), for the node types above.
CUresult cuGraphAddNode_v2(CUgraphNode* ph, CUgraph g, const CUgraphNode* d, const CUgraphEdgeData* data, size_t n,
                           CUgraphNodeParams* p) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!DefaultEdges(data, n)) return ReportUnsupported("cuGraphAddNode with edge data (programmatic dependencies)");
  switch (p->type) {
    case CU_GRAPH_NODE_TYPE_KERNEL:
      return AddNode("cuGraphAddNode", ph, g, d, n, p->type, [p](ClientState* s, GraphNode* node) {
        return SetKernelFrom(s, node, &p->kernel, p->kernel.kern);
      });
    case CU_GRAPH_NODE_TYPE_MEMSET:
      return AddNode("cuGraphAddNode", ph, g, d, n, p->type, [p](ClientState* s, GraphNode* node) {
        CUDA_MEMSET_NODE_PARAMS m{p->memset.dst, p->memset.pitch, p->memset.value, p->memset.elementSize,
                                  p->memset.width, p->memset.height};
        return SetMemset(s, node, &m);
      });
    case CU_GRAPH_NODE_TYPE_MEMCPY:
      if (p->memcpy.flags != 0 || p->memcpy.reserved != 0) return CUDA_ERROR_INVALID_VALUE;
      return AddNode("cuGraphAddNode", ph, g, d, n, p->type,
                     [p](ClientState* s, GraphNode* node) { return SetMemcpy(s, node, &p->memcpy.copyParams); });
    case CU_GRAPH_NODE_TYPE_HOST:
      return AddNode("cuGraphAddNode", ph, g, d, n, p->type, [p](ClientState*, GraphNode* node) {
        CUDA_HOST_NODE_PARAMS h{p->host.fn, p->host.userData};
        return SetHost(node, &h);
      });
    case CU_GRAPH_NODE_TYPE_GRAPH:
      return AddNode("cuGraphAddNode", ph, g, d, n, p->type,
                     [p](ClientState* s, GraphNode* node) { return ChildGraph(s, p->graph.graph, &node->child); });
    case CU_GRAPH_NODE_TYPE_EMPTY:
      return AddNode("cuGraphAddNode", ph, g, d, n, p->type, [](ClientState*, GraphNode*) { return CUDA_SUCCESS; });
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
      return AddNode("cuGraphAddNode", ph, g, d, n, p->type,
                     [p](ClientState* s, GraphNode* node) { return SetEvent(s, node, p->eventRecord.event); });
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT:
      return AddNode("cuGraphAddNode", ph, g, d, n, p->type,
                     [p](ClientState* s, GraphNode* node) { return SetEvent(s, node, p->eventWait.event); });
    case CU_GRAPH_NODE_TYPE_MEM_ALLOC: {
      CUDA_MEM_ALLOC_NODE_PARAMS a{p->alloc.poolProps, p->alloc.accessDescs, p->alloc.accessDescCount,
                                   p->alloc.bytesize, 0};
      CUresult r = cuGraphAddMemAllocNode(ph, g, d, n, &a);
      if (r == CUDA_SUCCESS) p->alloc.dptr = a.dptr;
      return r;
    }
    case CU_GRAPH_NODE_TYPE_MEM_FREE:
      return cuGraphAddMemFreeNode(ph, g, d, n, p->free.dptr);
    default:
      return ReportUnsupported(("cuGraphAddNode for node type " + std::to_string(p->type)).c_str());
  }
}
CUresult cuGraphAddNode(CUgraphNode* ph, CUgraph g, const CUgraphNode* d, size_t n, CUgraphNodeParams* p) {
  return cuGraphAddNode_v2(ph, g, d, nullptr, n, p);
}

// ---- node parameters ------------------------------------------------------

CUresult cuGraphNodeGetType(CUgraphNode h, CUgraphNodeType* type) {
  if (type == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  GraphNode* n = LiveNode(s, h);
  if (n == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *type = n->type;
  return CUDA_SUCCESS;
}

CUresult cuGraphKernelNodeGetParams_v2(CUgraphNode h, CUDA_KERNEL_NODE_PARAMS* p) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return WithNode(h, CU_GRAPH_NODE_TYPE_KERNEL, [p](ClientState*, GraphNode* n) {
    *p = CUDA_KERNEL_NODE_PARAMS{};
    p->func = n->given_func;
    p->kern = n->given_kern;
    p->gridDimX = n->grid[0];
    p->gridDimY = n->grid[1];
    p->gridDimZ = n->grid[2];
    p->blockDimX = n->block[0];
    p->blockDimY = n->block[1];
    p->blockDimZ = n->block[2];
    p->sharedMemBytes = n->shmem;
    p->kernelParams = n->param_ptrs.empty() ? nullptr : n->param_ptrs.data();
    return CUDA_SUCCESS;
  });
}
CUresult cuGraphKernelNodeGetParams(CUgraphNode h, CUDA_KERNEL_NODE_PARAMS_v1* p) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUDA_KERNEL_NODE_PARAMS v2{};
  CUresult r = cuGraphKernelNodeGetParams_v2(h, &v2);
  if (v2.func == nullptr) v2.func = reinterpret_cast<CUfunction>(v2.kern);  // v1 has no kern
  if (r == CUDA_SUCCESS) memcpy(p, &v2, sizeof *p);  // v1 is v2's prefix
  return r;
}

CUresult cuGraphKernelNodeSetParams_v2(CUgraphNode h, const CUDA_KERNEL_NODE_PARAMS* p) {
  return WithNode(h, CU_GRAPH_NODE_TYPE_KERNEL,
                  [p](ClientState* s, GraphNode* n) { return SetKernelFrom(s, n, p, p ? p->kern : nullptr); });
}
CUresult cuGraphKernelNodeSetParams(CUgraphNode h, const CUDA_KERNEL_NODE_PARAMS_v1* p) {
  return WithNode(h, CU_GRAPH_NODE_TYPE_KERNEL,
                  [p](ClientState* s, GraphNode* n) { return SetKernelFrom(s, n, p, nullptr); });
}

CUresult cuGraphMemsetNodeGetParams(CUgraphNode h, CUDA_MEMSET_NODE_PARAMS* p) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return WithNode(h, CU_GRAPH_NODE_TYPE_MEMSET, [p](ClientState*, GraphNode* n) {
    *p = n->memset;
    return CUDA_SUCCESS;
  });
}
CUresult cuGraphMemsetNodeSetParams(CUgraphNode h, const CUDA_MEMSET_NODE_PARAMS* p) {
  return WithNode(h, CU_GRAPH_NODE_TYPE_MEMSET, [p](ClientState* s, GraphNode* n) { return SetMemset(s, n, p); });
}

CUresult cuGraphMemcpyNodeGetParams(CUgraphNode h, CUDA_MEMCPY3D* p) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return WithNode(h, CU_GRAPH_NODE_TYPE_MEMCPY, [p](ClientState*, GraphNode* n) {
    *p = n->copy;
    return CUDA_SUCCESS;
  });
}
CUresult cuGraphMemcpyNodeSetParams(CUgraphNode h, const CUDA_MEMCPY3D* p) {
  return WithNode(h, CU_GRAPH_NODE_TYPE_MEMCPY, [p](ClientState* s, GraphNode* n) { return SetMemcpy(s, n, p); });
}

CUresult cuGraphHostNodeGetParams(CUgraphNode h, CUDA_HOST_NODE_PARAMS* p) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return WithNode(h, CU_GRAPH_NODE_TYPE_HOST, [p](ClientState*, GraphNode* n) {
    *p = n->host;
    return CUDA_SUCCESS;
  });
}
CUresult cuGraphHostNodeSetParams(CUgraphNode h, const CUDA_HOST_NODE_PARAMS* p) {
  return WithNode(h, CU_GRAPH_NODE_TYPE_HOST, [p](ClientState*, GraphNode* n) { return SetHost(n, p); });
}

CUresult cuGraphEventRecordNodeGetEvent(CUgraphNode h, CUevent* e) {
  if (e == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return WithNode(h, CU_GRAPH_NODE_TYPE_EVENT_RECORD, [e](ClientState*, GraphNode* n) {
    *e = n->event;
    return CUDA_SUCCESS;
  });
}
CUresult cuGraphEventRecordNodeSetEvent(CUgraphNode h, CUevent e) {
  return WithNode(h, CU_GRAPH_NODE_TYPE_EVENT_RECORD, [e](ClientState* s, GraphNode* n) { return SetEvent(s, n, e); });
}
CUresult cuGraphEventWaitNodeGetEvent(CUgraphNode h, CUevent* e) {
  if (e == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return WithNode(h, CU_GRAPH_NODE_TYPE_WAIT_EVENT, [e](ClientState*, GraphNode* n) {
    *e = n->event;
    return CUDA_SUCCESS;
  });
}
CUresult cuGraphEventWaitNodeSetEvent(CUgraphNode h, CUevent e) {
  return WithNode(h, CU_GRAPH_NODE_TYPE_WAIT_EVENT, [e](ClientState* s, GraphNode* n) { return SetEvent(s, n, e); });
}

CUresult cuGraphDestroyNode(CUgraphNode h) {
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  GraphNode* n = LiveNode(s, h);
  if (n == nullptr) return CUDA_ERROR_INVALID_VALUE;
  // Their memory is tied to the graph's lifetime (api_graph_mem.cc).
  if (n->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC || n->type == CU_GRAPH_NODE_TYPE_MEM_FREE)
    return ReportUnsupported("cuGraphDestroyNode of a memory node");
  auto& nodes = n->owner->nodes;
  for (auto& other : nodes) other->deps.erase(std::remove(other->deps.begin(), other->deps.end(), n), other->deps.end());
  s->graph_nodes().live.erase(n);
  ForgetChildHandle(s, n);
  nodes.erase(std::find_if(nodes.begin(), nodes.end(), [n](const auto& p) { return p.get() == n; }));
  return CUDA_SUCCESS;
}

// ---- topology -------------------------------------------------------------

CUresult cuGraphGetNodes(CUgraph hg, CUgraphNode* nodes, size_t* n) {
  if (n == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  GraphObj* g = s->FindGraph(hg);
  if (g == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (g->model == nullptr) {
    // Captured: the nodes live on the worker; only their number is offered.
    if (nodes != nullptr) return ReportUnsupported("cuGraphGetNodes (node handles of a captured graph)");
    proto::GraphGetNodeCountRep rep;
    CUresult r = Sync(s, proto::CallId::kGraphGetNodeCount, proto::GraphGetNodeCountReq{g->ctx->id, g->id}, &rep);
    if (r == CUDA_SUCCESS) *n = rep.count;
    return r;
  }
  Lock lock(s->graph_nodes().mu);
  std::vector<CUgraphNode> list;
  for (const auto& node : g->model->nodes) list.push_back(Handle(node.get()));
  return FillList(list, nodes, n);
}

CUresult cuGraphGetRootNodes(CUgraph hg, CUgraphNode* roots, size_t* n) {
  if (n == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  GraphModel* m = ModelOf(s, hg);
  if (m == nullptr) return IsCaptured(s, hg) ? ReportUnsupported("cuGraphGetRootNodes on a graph made by stream capture")
                                             : CUDA_ERROR_INVALID_VALUE;
  std::vector<CUgraphNode> list;
  for (const auto& node : m->nodes)
    if (node->deps.empty()) list.push_back(Handle(node.get()));
  return FillList(list, roots, n);
}

CUresult cuGraphGetEdges(CUgraph g, CUgraphNode* from, CUgraphNode* to, size_t* n) {
  return Edges(g, from, to, nullptr, n);
}
CUresult cuGraphGetEdges_v2(CUgraph g, CUgraphNode* from, CUgraphNode* to, CUgraphEdgeData* data, size_t* n) {
  return Edges(g, from, to, data, n);
}
CUresult cuGraphNodeGetDependencies(CUgraphNode h, CUgraphNode* d, size_t* n) {
  return NodeDeps(h, d, nullptr, n, false);
}
CUresult cuGraphNodeGetDependencies_v2(CUgraphNode h, CUgraphNode* d, CUgraphEdgeData* data, size_t* n) {
  return NodeDeps(h, d, data, n, false);
}
CUresult cuGraphNodeGetDependentNodes(CUgraphNode h, CUgraphNode* d, size_t* n) {
  return NodeDeps(h, d, nullptr, n, true);
}
CUresult cuGraphNodeGetDependentNodes_v2(CUgraphNode h, CUgraphNode* d, CUgraphEdgeData* data, size_t* n) {
  return NodeDeps(h, d, data, n, true);
}
CUresult cuGraphAddDependencies(CUgraph g, const CUgraphNode* from, const CUgraphNode* to, size_t n) {
  return ChangeDeps(g, from, to, nullptr, n, true);
}
CUresult cuGraphAddDependencies_v2(CUgraph g, const CUgraphNode* from, const CUgraphNode* to,
                                   const CUgraphEdgeData* data, size_t n) {
  return ChangeDeps(g, from, to, data, n, true);
}
CUresult cuGraphRemoveDependencies(CUgraph g, const CUgraphNode* from, const CUgraphNode* to, size_t n) {
  return ChangeDeps(g, from, to, nullptr, n, false);
}
CUresult cuGraphRemoveDependencies_v2(CUgraph g, const CUgraphNode* from, const CUgraphNode* to,
                                      const CUgraphEdgeData* data, size_t n) {
  return ChangeDeps(g, from, to, data, n, false);
}

// ---- executable graphs ----------------------------------------------------

// The legacy export: cuGraphInstantiate(exec, graph, error node, log, size).
CUresult cuGraphInstantiate(CUgraphExec* ph, CUgraph g, CUgraphNode* err_node, char* log, size_t n) {
  return cuGraphInstantiate_v2(ph, g, err_node, log, n);
}

CUresult cuGraphExecKernelNodeSetParams_v2(CUgraphExec e, CUgraphNode h, const CUDA_KERNEL_NODE_PARAMS* p) {
  return WithExecNode(e, h, CU_GRAPH_NODE_TYPE_KERNEL,
                      [p](ClientState* s, GraphNode* n) { return SetKernelFrom(s, n, p, p ? p->kern : nullptr); });
}
CUresult cuGraphExecKernelNodeSetParams(CUgraphExec e, CUgraphNode h, const CUDA_KERNEL_NODE_PARAMS_v1* p) {
  return WithExecNode(e, h, CU_GRAPH_NODE_TYPE_KERNEL,
                      [p](ClientState* s, GraphNode* n) { return SetKernelFrom(s, n, p, nullptr); });
}
CUresult cuGraphExecMemsetNodeSetParams(CUgraphExec e, CUgraphNode h, const CUDA_MEMSET_NODE_PARAMS* p, CUcontext) {
  return WithExecNode(e, h, CU_GRAPH_NODE_TYPE_MEMSET,
                      [p](ClientState* s, GraphNode* n) { return SetMemset(s, n, p); });
}
CUresult cuGraphExecMemcpyNodeSetParams(CUgraphExec e, CUgraphNode h, const CUDA_MEMCPY3D* p, CUcontext) {
  return WithExecNode(e, h, CU_GRAPH_NODE_TYPE_MEMCPY,
                      [p](ClientState* s, GraphNode* n) { return SetMemcpy(s, n, p); });
}
CUresult cuGraphExecHostNodeSetParams(CUgraphExec e, CUgraphNode h, const CUDA_HOST_NODE_PARAMS* p) {
  return WithExecNode(e, h, CU_GRAPH_NODE_TYPE_HOST, [p](ClientState*, GraphNode* n) { return SetHost(n, p); });
}
CUresult cuGraphExecEventRecordNodeSetEvent(CUgraphExec e, CUgraphNode h, CUevent ev) {
  return WithExecNode(e, h, CU_GRAPH_NODE_TYPE_EVENT_RECORD,
                      [ev](ClientState* s, GraphNode* n) { return SetEvent(s, n, ev); });
}
CUresult cuGraphExecEventWaitNodeSetEvent(CUgraphExec e, CUgraphNode h, CUevent ev) {
  return WithExecNode(e, h, CU_GRAPH_NODE_TYPE_WAIT_EVENT,
                      [ev](ClientState* s, GraphNode* n) { return SetEvent(s, n, ev); });
}
CUresult cuGraphExecChildGraphNodeSetParams(CUgraphExec e, CUgraphNode h, CUgraph child) {
  return WithExecNode(e, h, CU_GRAPH_NODE_TYPE_GRAPH, [child](ClientState* s, GraphNode* n) {
    std::shared_ptr<GraphModel> copy;
    if (CUresult r = ChildGraph(s, child, &copy); r != CUDA_SUCCESS) return r;
    const GraphNode* err = nullptr;
    const GraphNode* err_from = nullptr;
    // The driver requires the same topology as the node's current graph.
    if (Compare(*n->child, *copy, &err, &err_from) != CU_GRAPH_EXEC_UPDATE_SUCCESS) return CUDA_ERROR_INVALID_VALUE;
    n->child = std::move(copy);
    return CUDA_SUCCESS;
  });
}

CUresult cuGraphNodeSetParams(CUgraphNode h, CUgraphNodeParams* p) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return WithNode(h, p->type, [p](ClientState* s, GraphNode* n) { return SetGeneric(s, n, p); });
}
CUresult cuGraphExecNodeSetParams(CUgraphExec e, CUgraphNode h, CUgraphNodeParams* p) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  return WithExecNode(e, h, p->type, [p](ClientState* s, GraphNode* n) { return SetGeneric(s, n, p); });
}

// Only kernel, memset and memcpy nodes can be disabled (cuda.h).
CUresult cuGraphNodeSetEnabled(CUgraphExec e, CUgraphNode h, unsigned int enabled) {
  RGPU_STATE_OR_RETURN(s);
  CUgraphNodeType type;
  {
    Lock lock(s->graph_nodes().mu);
    GraphNode* n = LiveNode(s, h);
    if (n == nullptr) return CUDA_ERROR_INVALID_VALUE;
    type = n->type;
  }
  if (type != CU_GRAPH_NODE_TYPE_KERNEL && type != CU_GRAPH_NODE_TYPE_MEMSET && type != CU_GRAPH_NODE_TYPE_MEMCPY)
    return CUDA_ERROR_INVALID_VALUE;
  return WithExecNode(e, h, type, [enabled](ClientState*, GraphNode* n) {
    n->enabled = enabled != 0;
    return CUDA_SUCCESS;
  });
}
CUresult cuGraphNodeGetEnabled(CUgraphExec he, CUgraphNode h, unsigned int* enabled) {
  if (enabled == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  ExecObj* e = s->FindExec(he);
  GraphNode* n = LiveNode(s, h);
  if (e == nullptr || n == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (e->model == nullptr) return ReportUnsupported("cuGraphNodeGetEnabled on a graph made by stream capture");
  if (n->owner != e->model->source) return CUDA_ERROR_INVALID_VALUE;
  for (const auto& c : e->model->snapshot->nodes)
    if (c->origin == n) {
      *enabled = c->enabled;
      return CUDA_SUCCESS;
    }
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGraphExecUpdate_v2(CUgraphExec e, CUgraph g, CUgraphExecUpdateResultInfo* info) {
  return ExecUpdate(e, g, info);
}
CUresult cuGraphExecUpdate(CUgraphExec e, CUgraph g, CUgraphNode* err_node, CUgraphExecUpdateResult* result) {
  if (err_node == nullptr || result == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUgraphExecUpdateResultInfo info{};
  CUresult r = ExecUpdate(e, g, &info);
  *err_node = info.errorNode;
  *result = info.result;
  return r;
}

CUresult cuGraphExecGetFlags(CUgraphExec he, cuuint64_t* flags) {
  if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  Lock lock(s->graph_nodes().mu);
  ExecObj* e = s->FindExec(he);
  if (e == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (e->model == nullptr) return ReportUnsupported("cuGraphExecGetFlags on a graph made by stream capture");
  *flags = e->model->flags;
  return CUDA_SUCCESS;
}

}  // extern "C"
