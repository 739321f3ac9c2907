// Handlers: stream capture and graph execution, plus occupancy extras.
#include "server/worker/handlers.gen.h"
#include "server/worker/session.h"

namespace rgpu::worker {
namespace {
}  // namespace

Status HandleOccupancyAvailableDynamicSMem(Session& s, const proto::OccupancyAvailableDynamicSMemReq& req,
                                           proto::OccupancyAvailableDynamicSMemRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuOccupancyAvailableDynamicSMemPerBlock)
    return NotProvided("cuOccupancyAvailableDynamicSMemPerBlock");
  FunctionEntry* f = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindFunction(req.func), &f));
  if (f->kernel != nullptr && f->fn == nullptr)
    RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuKernelGetFunction(&f->fn, f->kernel), "cuKernelGetFunction"));
  size_t bytes = 0;
  Status st = CuStatus(s.driver().cuOccupancyAvailableDynamicSMemPerBlock(&bytes, f->fn, req.num_blocks,
                                                                         req.block_size),
                       "cuOccupancyAvailableDynamicSMemPerBlock");
  rep->bytes = bytes;
  return st;
}

Status HandleStreamBeginCapture(Session& s, const proto::StreamBeginCaptureReq& req,
                                proto::StreamBeginCaptureRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuStreamBeginCapture_v2) return NotProvided("stream capture");
  CUstream st = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindStream(req.stream), &st));
  if (req.mode > CU_STREAM_CAPTURE_MODE_RELAXED)
    return Status::Cuda(CUDA_ERROR_INVALID_VALUE, "unknown capture mode");
  // Every client thread is served by this one worker thread, so the
  // driver's per-thread checks of "unsafe" calls cannot be mirrored here: the
  // worker captures in relaxed mode, and the client applies the mode of the
  // calling thread (cuThreadExchangeStreamCaptureMode) itself.
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
  return CuStatus(s.driver().cuStreamBeginCapture_v2(st, mode), "cuStreamBeginCapture");
}

Status HandleStreamEndCapture(Session& s, const proto::StreamEndCaptureReq& req,
                              proto::StreamEndCaptureRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuStreamEndCapture) return NotProvided("stream capture");
  CUstream st = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindStream(req.stream), &st));
  CUgraph g = nullptr;
  RGPU_RETURN_IF_ERROR(CuStatus(s.driver().cuStreamEndCapture(st, &g), "cuStreamEndCapture"));
  Status added = s.AddGraph(req.graph, g);
  if (!added.ok()) s.driver().cuGraphDestroy(g);
  return added;
}

Status HandleGraphInstantiate(Session& s, const proto::GraphInstantiateReq& req,
                              proto::GraphInstantiateRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuGraphInstantiateWithFlags) return NotProvided("graphs");
  CUgraph g = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindGraph(req.graph), &g));
  CUgraphExec e = nullptr;
  RGPU_RETURN_IF_ERROR(
      CuStatus(s.driver().cuGraphInstantiateWithFlags(&e, g, req.flags), "cuGraphInstantiateWithFlags"));
  Status added = s.AddExec(req.exec, e);
  if (!added.ok()) s.driver().cuGraphExecDestroy(e);
  return added;
}

Status HandleGraphLaunch(Session& s, const proto::GraphLaunchReq& req, proto::GraphLaunchRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuGraphLaunch) return NotProvided("graphs");
  CUgraphExec e = nullptr;
  CUstream st = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindExec(req.exec), &e));
  RGPU_RETURN_IF_ERROR(Get(s.FindStream(req.stream), &st));
  return CuStatus(s.driver().cuGraphLaunch(e, st), "cuGraphLaunch");
}

Status HandleGraphUpload(Session& s, const proto::GraphUploadReq& req, proto::GraphUploadRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuGraphUpload) return NotProvided("graphs");
  CUgraphExec e = nullptr;
  CUstream st = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindExec(req.exec), &e));
  RGPU_RETURN_IF_ERROR(Get(s.FindStream(req.stream), &st));
  return CuStatus(s.driver().cuGraphUpload(e, st), "cuGraphUpload");
}

Status HandleGraphExecDestroy(Session& s, const proto::GraphExecDestroyReq& req,
                              proto::GraphExecDestroyRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUgraphExec e = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.TakeExec(req.exec), &e));
  return CuStatus(s.driver().cuGraphExecDestroy(e), "cuGraphExecDestroy");
}

Status HandleGraphDestroy(Session& s, const proto::GraphDestroyReq& req, proto::GraphDestroyRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUgraph g = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.TakeGraph(req.graph), &g));
  return CuStatus(s.driver().cuGraphDestroy(g), "cuGraphDestroy");
}

}  // namespace rgpu::worker

namespace rgpu::worker {

Status HandleOccupancyMaxActiveClusters(Session& s, const proto::OccupancyMaxActiveClustersReq& req,
                                        proto::OccupancyMaxActiveClustersRep* rep) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  const backend::DriverTable& d = s.driver();
  if (!(req.potential_size ? d.cuOccupancyMaxPotentialClusterSize : d.cuOccupancyMaxActiveClusters))
    return Status::Cuda(CUDA_ERROR_NOT_SUPPORTED, "cluster occupancy is not provided by this backend");
  FunctionEntry* f = nullptr;
  RGPU_RETURN_IF_ERROR(LaunchableFunctionFor(s, req.func, &f));
  CUstream stream = nullptr;
  Result<CUstream> st = s.FindStream(req.stream);
  if (!st.ok()) return st.take_status();
  stream = *st;
  CUlaunchAttribute attrs[kMaxLaunchAttrs];
  uint32_t nattrs = 0;
  RGPU_RETURN_IF_ERROR(DecodeLaunchAttrs(s, req.attrs, attrs, &nattrs));
  CUlaunchConfig cfg{};
  cfg.gridDimX = req.gx;
  cfg.gridDimY = req.gy;
  cfg.gridDimZ = req.gz;
  cfg.blockDimX = req.bx;
  cfg.blockDimY = req.by;
  cfg.blockDimZ = req.bz;
  cfg.sharedMemBytes = req.shmem;
  cfg.hStream = stream;
  cfg.attrs = nattrs ? attrs : nullptr;
  cfg.numAttrs = nattrs;
  int n = 0;
  Status result = req.potential_size
                      ? CuStatus(d.cuOccupancyMaxPotentialClusterSize(&n, f->fn, &cfg),
                                 "cuOccupancyMaxPotentialClusterSize")
                      : CuStatus(d.cuOccupancyMaxActiveClusters(&n, f->fn, &cfg), "cuOccupancyMaxActiveClusters");
  rep->clusters = n;
  return result;
}

}  // namespace rgpu::worker

#include <deque>

#include "server/worker/link.h"

namespace rgpu::worker {
namespace {
struct HostFuncCall {
  Link* link;
  uint64_t id;
};
// Runs on a driver thread when the stream reaches the host function.
void CUDA_CB RunClientHostFunc(void* arg) {
  auto* call = static_cast<HostFuncCall*>(arg);
  call->link->RunHostFunc(call->id);
  delete call;
}
void CUDA_CB RunKeptHostFunc(void* arg) {
  auto* call = static_cast<HostFuncCall*>(arg);
  call->link->RunHostFunc(call->id);
}
}  // namespace

Status HandleLaunchHostFunc(Session& s, const proto::LaunchHostFuncReq& req, proto::LaunchHostFuncRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuLaunchHostFunc) return Status::Cuda(CUDA_ERROR_NOT_SUPPORTED, "host functions are not provided by this backend");
  if (s.link() == nullptr) return Status::Internal("no client link for host functions");
  Result<CUstream> st = s.FindStream(req.stream);
  if (!st.ok()) return st.take_status();
  auto* call = new HostFuncCall{s.link(), req.callback};
  CUresult r = s.driver().cuLaunchHostFunc(*st, RunClientHostFunc, call);
  if (r != CUDA_SUCCESS) delete call;
  return CuStatus(r, "cuLaunchHostFunc");
}

// Host functions of captured graphs run at every launch of the graph, so
// their records live as long as the worker (one session) does.
Status HandleLaunchHostFuncKept(Session& s, const proto::LaunchHostFuncKeptReq& req,
                                proto::LaunchHostFuncKeptRep*) {
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  if (!s.driver().cuLaunchHostFunc) return Status::Cuda(CUDA_ERROR_NOT_SUPPORTED, "host functions are not provided by this backend");
  if (s.link() == nullptr) return Status::Internal("no client link for host functions");
  Result<CUstream> st = s.FindStream(req.stream);
  if (!st.ok()) return st.take_status();
  static std::deque<HostFuncCall> kept;  // stable addresses; this thread only appends
  kept.push_back(HostFuncCall{s.link(), req.callback});
  CUresult r = s.driver().cuLaunchHostFunc(*st, RunKeptHostFunc, &kept.back());
  if (r != CUDA_SUCCESS) kept.pop_back();
  return CuStatus(r, "cuLaunchHostFunc");
}

Status HandleHostFuncDone(Session&, const proto::HostFuncDoneReq&, proto::HostFuncDoneRep*) {
  // The link's reader consumes these; one reaching the executor is a bug.
  return Status::Protocol("HostFuncDone reached the executor");
}

}  // namespace rgpu::worker
