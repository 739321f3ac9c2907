// Sim driver functions: stream capture and graphs.
//
// The sim runs stream work at submission, so capture is the one place where
// work is deferred: while a stream captures, Submit() records each copy,
// memset, launch and event record as an op (with its own copy of kernel
// parameters and copy descriptors) instead of running it. cuStreamEndCapture
// turns the ops into a graph: their submission order, which is a valid
// topological order of the dependency graph the driver would build (every op
// was submitted after its dependencies). cuGraphLaunch replays them in that
// order. A stream joins a capture by waiting on an event recorded in it
// (cuStreamWaitEvent), as in the driver.
//
// Capture-mode rules (cuThreadExchangeStreamCaptureMode, per thread, default
// GLOBAL): "potentially unsafe" calls (synchronous copies and memsets,
// cuMemAlloc/Free, cuCtxSynchronize) fail with
// CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED and invalidate the capture when this
// thread has a non-relaxed capture open, or when this thread's mode is GLOBAL
// and another thread has a GLOBAL capture open. Work on the legacy stream
// while a capture is open in its context fails with
// CUDA_ERROR_STREAM_CAPTURE_IMPLICIT. An invalidated capture ends with
// CUDA_ERROR_STREAM_CAPTURE_INVALIDATED and no graph.
#include "backend/sim/sim_state.h"

namespace rgpu::backend::sim {
namespace {

thread_local CUstreamCaptureMode t_capture_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;

bool IsSpecial(CUstream s) {
  return s == nullptr || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD;
}

CUresult RunOps(SimDevice* d, const SimOps& ops) {
  for (const SimOp& op : ops) {
    if (CUresult r = op(d); r != CUDA_SUCCESS) return r;
  }
  return CUDA_SUCCESS;
}

}  // namespace

uint64_t SimDevice::StreamCaptureId(CUstream stream) {
  if (IsSpecial(stream)) return 0;
  auto it = streams.find(FromHandle(stream));
  if (it == streams.end() || it->second.capture == 0) return 0;
  return captures.count(it->second.capture) ? it->second.capture : 0;
}

Capture* SimDevice::CaptureOf(CUstream stream) {
  uint64_t id = StreamCaptureId(stream);
  return id == 0 ? nullptr : &captures[id];
}

CUresult SimDevice::Submit(CUstream stream, SimOp op) {
  if (Capture* c = CaptureOf(stream)) {
    if (c->invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    c->ops.push_back(std::move(op));
    return CUDA_SUCCESS;
  }
  if (stream == nullptr || stream == CU_STREAM_LEGACY) {
    // The legacy stream synchronises with every blocking stream, so it cannot
    // run while one of its context's streams captures.
    Context* ctx = nullptr;
    if (CurrentContext(&ctx) == CUDA_SUCCESS) {
      for (auto& [id, c] : captures) {
        auto origin = streams.find(c.origin);
        bool blocking = origin != streams.end() && !(origin->second.flags & CU_STREAM_NON_BLOCKING);
        if (c.ctx == ctx->id && blocking) {
          c.invalidated = true;
          return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
        }
      }
    }
  }
  return op(this);
}

CUresult SimDevice::CheckUnsafeCall() {
  if (captures.empty() || t_capture_mode == CU_STREAM_CAPTURE_MODE_RELAXED) return CUDA_SUCCESS;
  std::thread::id me = std::this_thread::get_id();
  CUresult result = CUDA_SUCCESS;
  for (auto& [id, c] : captures) {
    bool own = c.thread == me && c.mode != CU_STREAM_CAPTURE_MODE_RELAXED;
    bool global = t_capture_mode == CU_STREAM_CAPTURE_MODE_GLOBAL && c.thread != me &&
                  c.mode == CU_STREAM_CAPTURE_MODE_GLOBAL;
    if (own || global) {
      c.invalidated = true;
      result = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
  }
  return result;
}

CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) {
  SIM_ENTER(s);
  if (mode < CU_STREAM_CAPTURE_MODE_GLOBAL || mode > CU_STREAM_CAPTURE_MODE_RELAXED) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  if (CUresult r = s->CheckStream(hStream); r != CUDA_SUCCESS) return r;
  // The legacy stream cannot capture; the per-thread stream is not simulated
  // as a capturing stream either (it has no record of its own here).
  if (IsSpecial(hStream)) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  Stream& st = s->streams[FromHandle(hStream)];
  if (s->StreamCaptureId(hStream) != 0) return CUDA_ERROR_ILLEGAL_STATE;
  uint64_t id = NextId();
  Capture c;
  c.ctx = st.ctx;
  c.origin = FromHandle(hStream);
  c.mode = mode;
  c.thread = std::this_thread::get_id();
  s->captures[id] = std::move(c);
  st.capture = id;
  return CUDA_SUCCESS;
}

CUresult cuStreamEndCapture(CUstream hStream, CUgraph* phGraph) {
  SIM_ENTER(s);
  if (phGraph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckStream(hStream); r != CUDA_SUCCESS) return r;
  uint64_t id = s->StreamCaptureId(hStream);
  if (id == 0) return CUDA_ERROR_ILLEGAL_STATE;
  Capture& c = s->captures[id];
  if (c.origin != FromHandle(hStream)) return CUDA_ERROR_STREAM_CAPTURE_UNMATCHED;
  if (c.mode != CU_STREAM_CAPTURE_MODE_RELAXED && c.thread != std::this_thread::get_id()) {
    return CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD;
  }
  // Every stream and event of this capture leaves it.
  for (auto& [sid, st] : s->streams) {
    if (st.capture == id) st.capture = 0;
  }
  for (auto& [eid, ev] : s->events) {
    if (ev.capture == id) ev.capture = 0;
  }
  bool invalidated = c.invalidated;
  auto ops = std::make_shared<const SimOps>(std::move(c.ops));
  s->captures.erase(id);
  if (invalidated) {
    *phGraph = nullptr;
    return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  }
  uint64_t gid = NextId();
  s->graphs[gid] = Graph{std::move(ops)};
  *phGraph = ToHandle<CUgraph>(gid);
  return CUDA_SUCCESS;
}

CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode) {
  SIM_ENTER(s);
  if (mode == nullptr || *mode < CU_STREAM_CAPTURE_MODE_GLOBAL ||
      *mode > CU_STREAM_CAPTURE_MODE_RELAXED) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  std::swap(*mode, t_capture_mode);
  return CUDA_SUCCESS;
}

CUresult cuGraphInstantiateWithFlags(CUgraphExec* phGraphExec, CUgraph hGraph,
                                     unsigned long long flags) {
  SIM_ENTER(s);
  constexpr unsigned long long kAll =
      CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH | CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD |
      CUDA_GRAPH_INSTANTIATE_FLAG_DEVICE_LAUNCH | CUDA_GRAPH_INSTANTIATE_FLAG_USE_NODE_PRIORITY;
  if (phGraphExec == nullptr || (flags & ~kAll)) return CUDA_ERROR_INVALID_VALUE;
  SIM_CURRENT_CTX(s, ctx);
  auto g = s->graphs.find(FromHandle(hGraph));
  if (g == s->graphs.end()) return CUDA_ERROR_INVALID_VALUE;
  uint64_t id = NextId();
  s->graph_execs[id] = GraphExec{ctx->id, g->second.ops};  // ops are immutable: shared
  *phGraphExec = ToHandle<CUgraphExec>(id);
  return CUDA_SUCCESS;
}

CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream) {
  SIM_ENTER(s);
  auto e = s->graph_execs.find(FromHandle(hGraphExec));
  if (e == s->graph_execs.end()) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckStream(hStream); r != CUDA_SUCCESS) return r;
  std::shared_ptr<const SimOps> ops = e->second.ops;
  // Launching into a capturing stream records the whole graph as one op.
  return s->Submit(hStream, [ops](SimDevice* d) { return RunOps(d, *ops); });
}

CUresult cuGraphUpload(CUgraphExec hGraphExec, CUstream hStream) {
  SIM_ENTER(s);
  if (!s->graph_execs.count(FromHandle(hGraphExec))) return CUDA_ERROR_INVALID_VALUE;
  return s->CheckStream(hStream);  // nothing to upload: host memory
}

CUresult cuGraphExecDestroy(CUgraphExec hGraphExec) {
  SIM_ENTER(s);
  return s->graph_execs.erase(FromHandle(hGraphExec)) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGraphDestroy(CUgraph hGraph) {
  SIM_ENTER(s);
  return s->graphs.erase(FromHandle(hGraph)) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

}  // namespace rgpu::backend::sim
