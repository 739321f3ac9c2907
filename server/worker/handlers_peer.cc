// Handlers: peer access between the devices of a multi-GPU session
// (calls.spec 70, 71). Both contexts are the client's ids, so only contexts of
// this session, on GPUs it leased, can be named. The driver's own answers
// (CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED, ..._NOT_ENABLED, INVALID_DEVICE for
// a context's own device) go back to the client unchanged: libraries such as
// PyTorch enable access blindly and clear "already enabled" themselves.
#include "server/worker/handlers.gen.h"
#include "server/worker/session.h"

namespace rgpu::worker {

Status HandleCtxEnablePeerAccess(Session& s, const proto::CtxEnablePeerAccessReq& req,
                                 proto::CtxEnablePeerAccessRep*) {
  if (!s.driver().cuCtxEnablePeerAccess) return NotProvided("cuCtxEnablePeerAccess");
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUcontext peer = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindContext(req.peer), &peer));
  return CuStatus(s.driver().cuCtxEnablePeerAccess(peer, req.flags), "cuCtxEnablePeerAccess");
}

Status HandleCtxDisablePeerAccess(Session& s, const proto::CtxDisablePeerAccessReq& req,
                                  proto::CtxDisablePeerAccessRep*) {
  if (!s.driver().cuCtxDisablePeerAccess) return NotProvided("cuCtxDisablePeerAccess");
  RGPU_RETURN_IF_ERROR(s.UseContext(req.ctx));
  CUcontext peer = nullptr;
  RGPU_RETURN_IF_ERROR(Get(s.FindContext(req.peer), &peer));
  return CuStatus(s.driver().cuCtxDisablePeerAccess(peer), "cuCtxDisablePeerAccess");
}

}  // namespace rgpu::worker
