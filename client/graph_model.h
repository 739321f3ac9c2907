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

#include <memory>
#include <vector>

#include "client/client_state.h"

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

// ---- helpers of client/graph_model.cc; callers hold the registry lock ----

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

}  // namespace rgpu::client
