// Helpers shared by the exported driver functions (client/api_*.cc).
//
// Every exported function: (1) gets the ClientState or returns
// CUDA_ERROR_NOT_INITIALIZED, (2) validates its arguments locally, (3)
// answers locally when it can, else sends a call: Sync() waits for the
// reply, Post() does not (its failure surfaces at the next Sync()).
#pragma once

#include <cuda.h>

#include <functional>

#include "client/client_state.h"
#include "client/registered_memory.h"
#include "common/log.h"
#include "proto/calls.gen.h"

namespace rgpu::client {

// The CUresult an application sees for a Status from the transport.
inline CUresult ToCu(const Status& st) {
  if (st.ok()) return CUDA_SUCCESS;
  if (st.code() == Code::kCuda) return static_cast<CUresult>(st.cu_result());
  if (st.code() == Code::kTransport || st.code() == Code::kProtocol) {
    LogOnce(LogLevel::kError, "link-lost", "GPU server link failed: %s", st.message().c_str());
    return CUDA_ERROR_DEVICE_UNAVAILABLE;
  }
  return static_cast<CUresult>(st.ToCuResult());
}

// Waits for the reply. On success decodes it into *rep and returns the
// worker's CUresult; a pending async error from earlier calls is returned
// instead when this call itself succeeded.
// Logs a call the worker refused (RGPU_LOG=debug).
inline CUresult Refused(proto::CallId id, int cu) {
  const proto::CallInfo* c = proto::FindCall(static_cast<uint16_t>(id));
  RGPU_LOG_DEBUG("%s -> CUresult %d", c ? c->name : "?", cu);
  return static_cast<CUresult>(cu);
}

// Spans and views in *rep point into a per-thread buffer that stays valid
// until this thread's next Sync() of the same types. (Not a thread_local
// Reply: that would be destroyed at exit before other libraries' exit
// handlers make their last driver calls; see client_state.h.)
template <class Req, class Rep>
CUresult Sync(ClientState* s, proto::CallId id, const Req& req, Rep* rep) {
  static const size_t slot = ClientState::NewSyncReplySlot();
  Reply& reply = ClientState::SyncReply(slot);
  Status st = s->conn().Call(id, req, &reply);
  if (!st.ok()) return ToCu(st);
  if (reply.cu != 0) return Refused(id, reply.cu);
  proto::Reader r(reply.payload);
  if (Status d = proto::Decode(r, rep); !d.ok()) return ToCu(d);
  return s->TakeAsyncError();
}

template <class Req>
CUresult Sync(ClientState* s, proto::CallId id, const Req& req) {
  struct Empty {};
  Reply reply;
  Status st = s->conn().Call(id, req, &reply);
  if (!st.ok()) return ToCu(st);
  if (reply.cu != 0) return Refused(id, reply.cu);
  return s->TakeAsyncError();
}

template <class Req>
CUresult Post(ClientState* s, proto::CallId id, const Req& req) {
  return ToCu(s->conn().Post(id, req));
}

// The result of a synchronising call (context, stream or event sync, a
// query): once it succeeded, registered memory's mirrors are brought back
// (client/registered_memory.h).
inline CUresult AfterSync(ClientState* s, CUresult r) {
  return r == CUDA_SUCCESS ? RegisteredAfterSync(s) : r;
}

// The wire id of a stream handle. `per_thread` is true in the _ptsz/_ptds
// entry points, where stream 0 means the per-thread default stream.
// Returns false for an unknown handle.
bool WireStream(ClientState* s, CUstream h, bool per_thread, uint64_t* id);

// Runs `fn` on this host when stream `h` reaches this point (what
// cuLaunchHostFunc enqueues; in a capture it becomes a host node).
CUresult EnqueueHostWork(CUstream h, std::function<void()> fn, bool per_thread);

// The current context or nullptr.
inline CtxObj* CurrentCtx(ClientState* s) { return s->Current(); }

}  // namespace rgpu::client

// Gets the state or returns the driver's answer before cuInit, in a forked
// child, or at exit once the driver deinitialised itself (client_state.h).
#define RGPU_STATE_OR_RETURN(s)                                                \
  ::rgpu::client::ClientState* s = ::rgpu::client::ClientState::Get();         \
  if (s == nullptr) return CUDA_ERROR_NOT_INITIALIZED;                         \
  if (const CUresult rgpu_refusal_ = s->refusal(); rgpu_refusal_ != CUDA_SUCCESS) \
  [[unlikely]] return rgpu_refusal_

// For the calls answered without the state: returns CUDA_ERROR_DEINITIALIZED
// at exit, as every call needing the driver does.
#define RGPU_RETURN_IF_DEINITIALIZED() \
  if (::rgpu::client::ClientState::Deinitialized()) [[unlikely]] return CUDA_ERROR_DEINITIALIZED

// Gets the current context or returns CUDA_ERROR_INVALID_CONTEXT.
#define RGPU_CTX_OR_RETURN(s, ctx)                                 \
  ::rgpu::client::CtxObj* ctx = (s)->Current();                    \
  if (ctx == nullptr) return CUDA_ERROR_INVALID_CONTEXT
