// Graphs built node by node (cuGraphCreate, cuGraphAdd*Node): the client
// keeps the whole graph — nodes, their parameters and edges — so that adding
// nodes and edges and every topology query costs no round trip (DESIGN.md
// rules 1 and 4). The worker sees such a graph only when it is instantiated:
// the client then replays its nodes in a topological order into a private
// capturing stream through the ordinary launch, memset, copy, host-function
// and event paths, and instantiates the captured graph. The executable graph
// therefore runs the nodes one after another (a valid order of the graph; the
// driver could run independent branches concurrently). A graph with a copy
// to or from host memory (simpleCudaGraphs copies its input in and its
// result out) cannot live on the worker, whose process does not hold this
// process's memory: it is never made there, and each launch issues its nodes
// in the same order as ordinary stream work (host copies read the host
// memory when the launch is issued, as an asynchronous copy from pageable
// memory does).
//
// Thread safety: InstantiateModel, PrepareExecLaunch and ForgetGraphModel take
// ClientState::graph_nodes().mu themselves; the helpers below expect the
// caller (client/api_graph_nodes.cc) to hold it.
#pragma once

#include <cuda.h>

#include <map>
#include <memory>
#include <vector>

#include <string>

#include "client/api_common.h"
#include "client/client_state.h"
#include "client/unsupported.h"

namespace rgpu::client {

struct GraphModel;

struct GraphNode {
  CUgraphNodeType type = CU_GRAPH_NODE_TYPE_EMPTY;
  GraphModel* owner = nullptr;
  const GraphNode* origin = nullptr;  // the node this one was cloned from, if any
  std::vector<GraphNode*> deps;       // incoming edges, in the order added
  // CU_GRAPH_NODE_TYPE_KERNEL: parameters packed at the function's layout.
  CUfunction func = nullptr;  // what runs: func, else kern
  CUfunction given_func = nullptr;  // as given, handed back by GetParams
  CUkernel given_kern = nullptr;    // (cudart maps them back to its stubs)
  unsigned grid[3] = {}, block[3] = {}, shmem = 0;
  std::vector<uint8_t> params;
  std::vector<void*> param_ptrs;  // into params, for cuGraphKernelNodeGetParams
  CUDA_MEMSET_NODE_PARAMS memset{};
  CUDA_MEMCPY3D copy{};  // device sides only
  CUDA_HOST_NODE_PARAMS host{};
  std::shared_ptr<GraphModel> child;  // CU_GRAPH_NODE_TYPE_GRAPH: a copy made at add
  CUevent event = nullptr;            // event record / wait nodes
  bool enabled = true;                // cuGraphNodeSetEnabled (executable graphs)
  // Kernel nodes: launch attributes set with cuGraphKernelNodeSetAttribute
  // (by CUlaunchAttributeID), applied when the node is launched.
  std::map<uint32_t, CUlaunchAttributeValue> attrs;
  // Memory nodes (client/api_graph_mem.cc): the allocation parameters (dptr
  // filled at add; accessDescs points into mem_access only when handed
  // out) and, for a free node, the address it frees.
  CUDA_MEM_ALLOC_NODE_PARAMS mem_alloc{};
  std::vector<CUmemAccessDesc> mem_access;
  CUdeviceptr mem_free = 0;
  // Child graph nodes: the handle cuGraphChildGraphNodeGetGraph gave out for
  // `child` (owned by ClientState, dropped with the node); never copied.
  GraphObj* child_handle = nullptr;
};

struct GraphModel {
  CtxObj* ctx = nullptr;
  std::vector<std::unique_ptr<GraphNode>> nodes;  // in creation order
};

struct ExecModel {
  const GraphModel* source = nullptr;   // the graph it was instantiated from (compared only)
  std::shared_ptr<GraphModel> snapshot;  // its nodes' parameters; origin = source node
  unsigned long long flags = 0;
  bool dirty = false;  // parameters changed since the worker's graph was made
  // The graph copies to or from host memory, which stays on the client: it
  // is not made on the worker; each launch issues its nodes in a topological
  // order on the launch stream (LaunchDirect), host copies included.
  bool direct = false;
};

// Runs fn() with context c current (pushed for the call when it is not
// already) and returns its result, or the push's failure.
template <class Fn>
CUresult InContext(CtxObj* c, Fn fn) {
  CUcontext ctx = reinterpret_cast<CUcontext>(c);
  CUcontext cur = nullptr;
  cuCtxGetCurrent(&cur);
  bool pushed = cur != ctx;
  if (pushed)
    if (CUresult r = cuCtxPushCurrent_v2(ctx); r != CUDA_SUCCESS) return r;
  CUresult r = fn();
  if (pushed) {
    CUcontext popped = nullptr;
    cuCtxPopCurrent_v2(&popped);
  }
  return r;
}

// ---- helpers of client/graph_model.cc; callers hold the registry lock ----

// The nodes named by deps[0..n) (live, of model m, no repeats), appended to
// *out; CUDA_ERROR_INVALID_VALUE otherwise (client/api_graph_nodes.cc).
CUresult CheckDeps(ClientState* s, GraphModel* m, const CUgraphNode* deps, size_t n, std::vector<GraphNode*>* out);

// The model of graph h (null if h is unknown or was made by capture).
GraphModel* ModelOf(ClientState* s, CUgraph h);
// h is a valid graph made by stream capture (no model).
bool IsCaptured(ClientState* s, CUgraph h);
// The node of handle h if it is alive in a user-visible graph, else null.
GraphNode* LiveNode(ClientState* s, CUgraphNode h);
CUgraphNode Handle(const GraphNode* n);

// Node parameter setters: check what the driver checks at the call
// (CUDA_ERROR_INVALID_VALUE, or NOT_SUPPORTED for what rgpu refuses) and
// change n only on success.
CUresult SetKernel(ClientState* s, GraphNode* n, CUfunction func, CUkernel kern, const unsigned* grid,
                   const unsigned* block, unsigned shmem, void** kp, void** extra);
template <class P>  // CUDA_KERNEL_NODE_PARAMS v1, v2 or v3
CUresult SetKernelFrom(ClientState* s, GraphNode* n, const P* p, CUkernel kern) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  unsigned grid[3] = {p->gridDimX, p->gridDimY, p->gridDimZ};
  unsigned block[3] = {p->blockDimX, p->blockDimY, p->blockDimZ};
  return SetKernel(s, n, p->func, kern, grid, block, p->sharedMemBytes, p->kernelParams, p->extra);
}
CUresult SetMemset(ClientState* s, GraphNode* n, const CUDA_MEMSET_NODE_PARAMS* p);
CUresult SetMemcpy(ClientState* s, GraphNode* n, const CUDA_MEMCPY3D* p);
CUresult SetHost(GraphNode* n, const CUDA_HOST_NODE_PARAMS* p);
CUresult SetEvent(ClientState* s, GraphNode* n, CUevent e);
CUresult SetGeneric(ClientState* s, GraphNode* n, const CUgraphNodeParams* p);
// A copy of graph `child` for a child-graph node.
CUresult ChildGraph(ClientState* s, CUgraph child, std::shared_ptr<GraphModel>* out);

// Deep copy; with set_origin each copy's origin is its original.
std::shared_ptr<GraphModel> Clone(const GraphModel& m, bool set_origin);
// Copies from's parameters (same type) into to, keeping to's edges.
void CopyParams(GraphNode* to, const GraphNode& from);
void RebindParams(GraphNode* n, const GraphNode& from);
// Same node count, types and edges (nodes paired in creation order).
CUgraphExecUpdateResult Compare(const GraphModel& a, const GraphModel& b, const GraphNode** err,
                                const GraphNode** err_from);

// cuGraphInstantiate* for a graph with a model: builds the worker's graph
// and instantiates it as e->id. Returns the driver's error.
CUresult InstantiateModel(ClientState* s, GraphObj* g, ExecObj* e, unsigned long long flags);
// Before a launch of e: remakes the worker's graph if node parameters changed
// (cuGraphExec*SetParams, cuGraphExecUpdate), under a new worker id.
CUresult PrepareExecLaunch(ClientState* s, ExecObj* e);
// cuGraphLaunch of a direct exec (ExecModel::direct) on stream st.
CUresult LaunchDirect(ClientState* s, ExecObj* e, CUstream st);
// Before cuGraphDestroy drops g: its node handles stop being valid.
void ForgetGraphModel(ClientState* s, GraphObj* g);
// The registry lock is held: node n (a child graph node) goes away, and
// with it the handle of its graph and that graph's node handles.
void ForgetChildHandle(ClientState* s, GraphNode* n);

// Adds a node of `type` to graph hg, after deps, whose parameters `fill`
// sets (fill(s, node) returns a CUresult); the registry lock is taken here
// and held while fill runs. Graphs made by stream capture are refused, by
// `name`.
template <class Fill>
CUresult AddNode(const char* name, CUgraphNode* ph, CUgraph hg, const CUgraphNode* deps, size_t ndeps,
                 CUgraphNodeType type, Fill fill) {
  if (ph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  std::lock_guard<std::mutex> lock(s->graph_nodes().mu);
  GraphModel* m = ModelOf(s, hg);
  if (m == nullptr) {
    if (IsCaptured(s, hg)) return ReportUnsupported((std::string(name) + " on a graph made by stream capture").c_str());
    return CUDA_ERROR_INVALID_VALUE;
  }
  auto node = std::make_unique<GraphNode>();
  node->type = type;
  node->owner = m;
  if (CUresult r = CheckDeps(s, m, deps, ndeps, &node->deps); r != CUDA_SUCCESS) return r;
  if (CUresult r = fill(s, node.get()); r != CUDA_SUCCESS) return r;
  *ph = Handle(node.get());
  s->graph_nodes().live.insert(node.get());
  m->nodes.push_back(std::move(node));
  return CUDA_SUCCESS;
}

// ---- graph lifetime hooks (client/api_graph_extras.cc); no lock held ----
// cuGraphInstantiate*: e holds g's user-object references and captured memory.
void OnInstantiated(ClientState* s, GraphObj* g, ExecObj* e);
// cuGraphClone: the clone holds the original's user-object references.
void OnCloned(ClientState* s, GraphObj* from, GraphObj* to);
// cuGraphDestroy / cuGraphExecDestroy, before the object is dropped: releases
// its user-object references (running destructors whose count reaches 0) and
// frees captured memory once no graph holds it.
void OnGraphDestroyed(ClientState* s, GraphObj* g);
void OnExecDestroyed(ClientState* s, ExecObj* e);
// cuMemAllocAsync / cuMemFreeAsync in a capture of graph g, and cuMemFree of
// any pointer: true when the free was deferred (p stays allocated until
// the graphs that may use it are gone).
void NoteCaptureAlloc(ClientState* s, GraphObj* g, CUdeviceptr p);
// Device memory p was freed: it no longer counts as graph memory.
void NoteGraphMemFreed(ClientState* s, CUdeviceptr p);
void NoteCaptureFree(ClientState* s, GraphObj* g, CUdeviceptr p);
// The same with the registry lock held (graph memory nodes).
void NoteCaptureAllocLocked(ClientState* s, GraphObj* g, CUdeviceptr p);
void NoteCaptureFreeLocked(ClientState* s, GraphObj* g, CUdeviceptr p);
bool DeferFreeOfCaptureAlloc(ClientState* s, CUdeviceptr p);

}  // namespace rgpu::client
