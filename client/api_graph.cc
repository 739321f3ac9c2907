// Exported driver functions: stream capture and graph launch, capture into
// an existing (empty) graph and clearing a capture's dependencies.
//
// Capture runs on the worker (the graph is built there from the captured
// calls, which are sent as usual); the client mirrors which streams capture
// so that cuStreamIsCapturing and cuStreamGetCaptureInfo stay local.
#include <atomic>

#include "client/api_common.h"
#include "client/graph_model.h"
#include "client/managed_memory.h"
#include "client/unsupported.h"

using namespace rgpu::client;
namespace proto = rgpu::proto;

namespace {

std::atomic<uint64_t> g_next_capture{1};

// Per-thread capture mode, as cuThreadExchangeStreamCaptureMode keeps it.
CUstreamCaptureMode& ThreadMode() {
  static thread_local CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
  return mode;
}

// `into`: cuStreamBeginCaptureToGraph's graph, else null (a new graph).
CUresult Begin(CUstream h, CUstreamCaptureMode mode, bool pt, CUgraph into = nullptr) {
  RGPU_STATE_OR_RETURN(s);
  uint64_t id = 0;
  if (!WireStream(s, h, pt, &id)) return CUDA_ERROR_INVALID_HANDLE;
  if (id == kWireStreamLegacyDefault || id == kWireStreamLegacy) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  if (s->GetCapture(id).id != 0) return CUDA_ERROR_ILLEGAL_STATE;
  CtxObj* c = s->Current();
  if (StreamObj* so = s->FindStream(h)) c = so->ctx;
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  GraphObj* target = nullptr;
  if (into != nullptr) {
    // Only an empty graph built node by node can be captured into: the
    // capture then makes it, on the worker, as a capture makes a new graph.
    // Nodes already in the client's model could not be joined to it.
    std::lock_guard<std::mutex> lock(s->graph_nodes().mu);
    target = s->FindGraph(into);
    if (target == nullptr || target->embedded) return CUDA_ERROR_INVALID_VALUE;
    if (target->model == nullptr || !target->model->nodes.empty())
      return ReportUnsupported("cuStreamBeginCaptureToGraph into a graph that has nodes");
    if (target->model->ctx != c) return ReportUnsupported("cuStreamBeginCaptureToGraph into another context's graph");
  }
  CUresult r = Sync(s, proto::CallId::kStreamBeginCapture,
                    proto::StreamBeginCaptureReq{c->id, id, static_cast<uint32_t>(mode)});
  if (r != CUDA_SUCCESS) return r;
  Capture cap;
  cap.id = g_next_capture.fetch_add(1);
  cap.origin = id;
  if (target != nullptr) {
    std::lock_guard<std::mutex> lock(s->graph_nodes().mu);
    target->model.reset();  // from now on a graph made by capture (its model was empty)
    target->ctx = c;
    cap.graph = target;
    cap.into_graph = true;
  } else {
    auto g = std::make_unique<GraphObj>();
    g->id = s->NewId();
    g->ctx = c;
    cap.graph = s->AddGraph(std::move(g));
  }
  s->SetCapture(id, cap);
  return CUDA_SUCCESS;
}

CUresult BeginToGraph(CUstream h, CUgraph g, const CUgraphNode* deps, const CUgraphEdgeData* data, size_t n,
                      CUstreamCaptureMode mode, bool pt) {
  if (g == nullptr || (n != 0 && deps == nullptr)) return CUDA_ERROR_INVALID_VALUE;
  if (n != 0 || data != nullptr) return ReportUnsupported("cuStreamBeginCaptureToGraph with dependencies");
  return Begin(h, mode, pt, g);
}

// The client does not mirror the capture's node-level dependencies (its
// cuStreamGetCaptureInfo reports none), so only an empty set can be given:
// SET makes the next captured node a root on the worker, ADD of nothing
// changes nothing.
CUresult UpdateDeps(CUstream h, CUgraphNode* deps, const CUgraphEdgeData* data, size_t n, unsigned flags, bool pt) {
  if (flags != CU_STREAM_ADD_CAPTURE_DEPENDENCIES && flags != CU_STREAM_SET_CAPTURE_DEPENDENCIES)
    return CUDA_ERROR_INVALID_VALUE;
  if (n != 0 && deps == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  uint64_t id = 0;
  if (!WireStream(s, h, pt, &id)) return CUDA_ERROR_INVALID_HANDLE;
  Capture cap = s->GetCapture(id);
  if (cap.id == 0) return CUDA_ERROR_ILLEGAL_STATE;
  if (n != 0 || data != nullptr)
    return ReportUnsupported("cuStreamUpdateCaptureDependencies with nodes (capture dependencies live on the worker)");
  if (flags == CU_STREAM_ADD_CAPTURE_DEPENDENCIES) return CUDA_SUCCESS;
  return Post(s, proto::CallId::kStreamClearCaptureDependencies,
              proto::StreamClearCaptureDependenciesReq{cap.graph->ctx->id, id});
}

CUresult End(CUstream h, CUgraph* phGraph, bool pt) {
  if (phGraph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  uint64_t id = 0;
  if (!WireStream(s, h, pt, &id)) return CUDA_ERROR_INVALID_HANDLE;
  Capture cap = s->GetCapture(id);
  if (cap.id == 0) return CUDA_ERROR_ILLEGAL_STATE;
  if (cap.origin != id) return CUDA_ERROR_STREAM_CAPTURE_UNMATCHED;
  s->EndCapture(cap.id);
  CUresult r = Sync(s, proto::CallId::kStreamEndCapture,
                    proto::StreamEndCaptureReq{cap.graph->ctx->id, id, cap.graph->id});
  if (r != CUDA_SUCCESS) {
    if (cap.into_graph) {
      // Capture into a graph: it stays, empty, with its references; frees
      // captured into it happen when it is destroyed.
      std::lock_guard<std::mutex> lock(s->graph_nodes().mu);
      cap.graph->model = std::make_shared<GraphModel>();
      cap.graph->model->ctx = cap.graph->ctx;
    } else {
      OnGraphDestroyed(s, cap.graph);  // no graph: captured frees happen now
      s->DropGraph(cap.graph);
    }
    *phGraph = nullptr;
    return r;
  }
  *phGraph = reinterpret_cast<CUgraph>(cap.graph);
  return CUDA_SUCCESS;
}

CUresult Info(CUstream h, CUstreamCaptureStatus* status, cuuint64_t* id_out, CUgraph* graph,
              const CUgraphNode** deps, const CUgraphEdgeData** edges, size_t* ndeps, bool pt) {
  if (status == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  uint64_t id = 0;
  if (!WireStream(s, h, pt, &id)) return CUDA_ERROR_INVALID_HANDLE;
  Capture cap = s->GetCapture(id);
  *status = cap.id ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_NONE;
  if (id_out) *id_out = cap.id;
  if (graph) *graph = reinterpret_cast<CUgraph>(cap.graph);
  // Node-level dependencies live on the worker; an empty set is reported.
  if (deps) *deps = nullptr;
  if (edges) *edges = nullptr;
  if (ndeps) *ndeps = 0;
  return CUDA_SUCCESS;
}

CUresult Instantiate(CUgraphExec* ph, CUgraph hg, unsigned long long flags) {
  if (ph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  GraphObj* g = s->FindGraph(hg);
  if (g == nullptr) return CUDA_ERROR_INVALID_VALUE;
  auto e = std::make_unique<ExecObj>();
  e->id = s->NewId();
  e->ctx = g->ctx;
  CUresult r = g->model ? InstantiateModel(s, g, e.get(), flags)  // built node by node
                        : Sync(s, proto::CallId::kGraphInstantiate,
                               proto::GraphInstantiateReq{g->ctx->id, g->id, e->id, flags});
  if (r != CUDA_SUCCESS) return r;
  OnInstantiated(s, g, e.get());
  *ph = reinterpret_cast<CUgraphExec>(s->AddExec(std::move(e)));
  return CUDA_SUCCESS;
}

CUresult LaunchOrUpload(CUgraphExec he, CUstream h, bool pt, bool upload) {
  RGPU_STATE_OR_RETURN(s);
  ExecObj* e = s->FindExec(he);
  if (e == nullptr) return CUDA_ERROR_INVALID_VALUE;
  uint64_t id = 0;
  if (!WireStream(s, h, pt, &id)) return CUDA_ERROR_INVALID_HANDLE;
  if (CUresult r = PrepareExecLaunch(s, e); r != CUDA_SUCCESS) return r;
  if (e->model != nullptr && e->model->direct) {  // runs on the client (graph_model.h)
    if (upload) return CUDA_SUCCESS;
    return LaunchDirect(s, e, pt && h == nullptr ? CU_STREAM_PER_THREAD : h);
  }
  if (upload) return Post(s, proto::CallId::kGraphUpload, proto::GraphUploadReq{e->ctx->id, e->id, id});
  if (CUresult r = ManagedBeforeDeviceWork(s); r != CUDA_SUCCESS) return r;
  // Its kernels may make the driver raise the stack limit (api_launch.cc).
  e->ctx->limits[CU_LIMIT_STACK_SIZE].store(0, std::memory_order_relaxed);
  CUresult r = Post(s, proto::CallId::kGraphLaunch, proto::GraphLaunchReq{e->ctx->id, e->id, id});
  ManagedAfterDeviceWork();
  return r;
}

}  // namespace

extern "C" {

CUresult cuStreamBeginCapture_v2(CUstream h, CUstreamCaptureMode mode) { return Begin(h, mode, false); }
CUresult cuStreamBeginCapture_v2_ptsz(CUstream h, CUstreamCaptureMode mode) { return Begin(h, mode, true); }
CUresult cuStreamBeginCapture(CUstream h) { return Begin(h, CU_STREAM_CAPTURE_MODE_GLOBAL, false); }
CUresult cuStreamBeginCapture_ptsz(CUstream h) { return Begin(h, CU_STREAM_CAPTURE_MODE_GLOBAL, true); }
CUresult cuStreamBeginCaptureToGraph(CUstream h, CUgraph g, const CUgraphNode* d, const CUgraphEdgeData* e, size_t n,
                                     CUstreamCaptureMode mode) {
  return BeginToGraph(h, g, d, e, n, mode, false);
}
__attribute__((visibility("default"))) CUresult cuStreamBeginCaptureToGraph_ptsz(
    CUstream h, CUgraph g, const CUgraphNode* d, const CUgraphEdgeData* e, size_t n, CUstreamCaptureMode mode) {
  return BeginToGraph(h, g, d, e, n, mode, true);
}
__attribute__((visibility("default"))) CUresult cuStreamUpdateCaptureDependencies(CUstream h, CUgraphNode* d,
                                                                                  size_t n, unsigned int flags) {
  return UpdateDeps(h, d, nullptr, n, flags, false);
}
__attribute__((visibility("default"))) CUresult cuStreamUpdateCaptureDependencies_ptsz(CUstream h, CUgraphNode* d,
                                                                                       size_t n, unsigned int flags) {
  return UpdateDeps(h, d, nullptr, n, flags, true);
}
__attribute__((visibility("default"))) CUresult cuStreamUpdateCaptureDependencies_v2(
    CUstream h, CUgraphNode* d, const CUgraphEdgeData* e, size_t n, unsigned int flags) {
  return UpdateDeps(h, d, e, n, flags, false);
}
__attribute__((visibility("default"))) CUresult cuStreamUpdateCaptureDependencies_v2_ptsz(
    CUstream h, CUgraphNode* d, const CUgraphEdgeData* e, size_t n, unsigned int flags) {
  return UpdateDeps(h, d, e, n, flags, true);
}
CUresult cuStreamEndCapture(CUstream h, CUgraph* g) { return End(h, g, false); }
CUresult cuStreamEndCapture_ptsz(CUstream h, CUgraph* g) { return End(h, g, true); }

CUresult cuStreamGetCaptureInfo(CUstream h, CUstreamCaptureStatus* st, cuuint64_t* id) {
  return Info(h, st, id, nullptr, nullptr, nullptr, nullptr, false);
}
CUresult cuStreamGetCaptureInfo_ptsz(CUstream h, CUstreamCaptureStatus* st, cuuint64_t* id) {
  return Info(h, st, id, nullptr, nullptr, nullptr, nullptr, true);
}
CUresult cuStreamGetCaptureInfo_v2(CUstream h, CUstreamCaptureStatus* st, cuuint64_t* id, CUgraph* g,
                                   const CUgraphNode** d, size_t* n) {
  return Info(h, st, id, g, d, nullptr, n, false);
}
CUresult cuStreamGetCaptureInfo_v2_ptsz(CUstream h, CUstreamCaptureStatus* st, cuuint64_t* id, CUgraph* g,
                                        const CUgraphNode** d, size_t* n) {
  return Info(h, st, id, g, d, nullptr, n, true);
}
CUresult cuStreamGetCaptureInfo_v3(CUstream h, CUstreamCaptureStatus* st, cuuint64_t* id, CUgraph* g,
                                   const CUgraphNode** d, const CUgraphEdgeData** e, size_t* n) {
  return Info(h, st, id, g, d, e, n, false);
}
CUresult cuStreamGetCaptureInfo_v3_ptsz(CUstream h, CUstreamCaptureStatus* st, cuuint64_t* id, CUgraph* g,
                                        const CUgraphNode** d, const CUgraphEdgeData** e, size_t* n) {
  return Info(h, st, id, g, d, e, n, true);
}

CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode) {
  RGPU_RETURN_IF_DEINITIALIZED();
  if (mode == nullptr || *mode > CU_STREAM_CAPTURE_MODE_RELAXED) return CUDA_ERROR_INVALID_VALUE;
  CUstreamCaptureMode old = ThreadMode();
  ThreadMode() = *mode;
  *mode = old;
  return CUDA_SUCCESS;
}

CUresult cuGraphInstantiateWithFlags(CUgraphExec* ph, CUgraph g, unsigned long long flags) {
  return Instantiate(ph, g, flags);
}

CUresult cuGraphInstantiateWithParams(CUgraphExec* ph, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS* p) {
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (p->flags & CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD)
    return ReportUnsupported("cuGraphInstantiateWithParams(CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD)");
  CUresult r = Instantiate(ph, g, p->flags);
  p->result_out = r == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS : CUDA_GRAPH_INSTANTIATE_ERROR;
  return r;
}
CUresult cuGraphInstantiateWithParams_ptsz(CUgraphExec* ph, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS* p) {
  return cuGraphInstantiateWithParams(ph, g, p);
}

CUresult cuGraphInstantiate_v2(CUgraphExec* ph, CUgraph g, CUgraphNode* err_node, char* log, size_t n) {
  if (err_node) *err_node = nullptr;
  if (log && n) log[0] = 0;
  return Instantiate(ph, g, 0);
}

CUresult cuGraphLaunch(CUgraphExec e, CUstream h) { return LaunchOrUpload(e, h, false, false); }
CUresult cuGraphLaunch_ptsz(CUgraphExec e, CUstream h) { return LaunchOrUpload(e, h, true, false); }
CUresult cuGraphUpload(CUgraphExec e, CUstream h) { return LaunchOrUpload(e, h, false, true); }
CUresult cuGraphUpload_ptsz(CUgraphExec e, CUstream h) { return LaunchOrUpload(e, h, true, true); }

CUresult cuGraphExecDestroy(CUgraphExec he) {
  RGPU_STATE_OR_RETURN(s);
  ExecObj* e = s->FindExec(he);
  if (e == nullptr) return CUDA_ERROR_INVALID_VALUE;
  CUresult r = CUDA_SUCCESS;
  if (e->model == nullptr || !e->model->direct)  // a direct exec has nothing on the worker
    r = Post(s, proto::CallId::kGraphExecDestroy, proto::GraphExecDestroyReq{e->ctx->id, e->id});
  OnExecDestroyed(s, e);
  s->DropExec(e);
  return r;
}

CUresult cuGraphDestroy(CUgraph hg) {
  RGPU_STATE_OR_RETURN(s);
  GraphObj* g = s->FindGraph(hg);
  if (g == nullptr || g->embedded) return CUDA_ERROR_INVALID_VALUE;  // a child node owns an embedded graph
  OnGraphDestroyed(s, g);
  if (g->model != nullptr) {  // built node by node: the worker never saw it
    ForgetGraphModel(s, g);
    s->DropGraph(g);
    return CUDA_SUCCESS;
  }
  CUresult r = Post(s, proto::CallId::kGraphDestroy, proto::GraphDestroyReq{g->ctx->id, g->id});
  s->DropGraph(g);
  return r;
}

}  // extern "C"
