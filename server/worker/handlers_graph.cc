// Handlers: stream capture and graph execution, plus occupancy extras.
#include "server/worker/handlers.gen.h"
#include "server/worker/session.h"

namespace rgpu::worker {
namespace {
template <class T>
Status Get(Result<T>&& r, T* out) {
  if (!r.ok()) return r.take_status();
  *out = *r;
  return {};
}
Status NotProvided(const char* what) {
  return Status::Cuda(CUDA_ERROR_NOT_SUPPORTED, std::string(what) + " is not provided by this backend");
}
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
  // All client threads are served by this one thread: only relaxed or
  // thread-local checking can be mirrored faithfully here, so global mode is
  // applied as thread-local (the client checks its own threads).
  CUstreamCaptureMode mode = static_cast<CUstreamCaptureMode>(req.mode);
  if (mode == CU_STREAM_CAPTURE_MODE_GLOBAL) mode = CU_STREAM_CAPTURE_MODE_THREAD_LOCAL;
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
