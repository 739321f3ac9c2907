// Exported driver functions: peer access between the devices of a
// multi-GPU session (RGPU_GPUS=N).
//
// What each device can do with each other one never changes: the worker
// sends it with the device facts at cuInit (proto::DeviceFacts::peers), so
// cuDeviceCanAccessPeer and cuDeviceGetP2PAttribute are answered locally.
// Enabling and disabling access changes the worker's contexts and is sent
// (rare: libraries do it once per pair). Peer copies are in api_copy.cc.
#include "client/api_common.h"

using namespace rgpu::client;
namespace proto = rgpu::proto;

namespace {

bool ValidDevice(ClientState* s, CUdevice dev) { return dev >= 0 && dev < s->device_count(); }

// Fact `k` (proto::DeviceFacts::peers) of device `dev` about `peer`; 0 when
// the server sent none (a single-GPU session, or an older worker).
int PeerFact(ClientState* s, CUdevice dev, CUdevice peer, size_t k) {
  const auto& peers = s->device(dev).peers;
  size_t j = static_cast<size_t>(s->RemoteOrdinal(peer));
  return j < peers.size() ? peers[j][k] : 0;
}

CtxObj* AsCtx(ClientState* s, CUcontext c) {
  return c != nullptr && s->IsContext(c) ? reinterpret_cast<CtxObj*>(c) : nullptr;
}

}  // namespace

extern "C" {

CUresult cuDeviceCanAccessPeer(int* canAccessPeer, CUdevice dev, CUdevice peerDev) {
  if (canAccessPeer == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (!ValidDevice(s, dev) || !ValidDevice(s, peerDev)) return CUDA_ERROR_INVALID_DEVICE;
  *canAccessPeer = dev == peerDev ? 0 : PeerFact(s, dev, peerDev, 0);
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetP2PAttribute(int* value, CUdevice_P2PAttribute attrib, CUdevice srcDevice,
                                 CUdevice dstDevice) {
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  RGPU_STATE_OR_RETURN(s);
  if (!ValidDevice(s, srcDevice) || !ValidDevice(s, dstDevice)) return CUDA_ERROR_INVALID_DEVICE;
  int a = static_cast<int>(attrib);
  if (a < 1 || a >= static_cast<int>(proto::kP2PFacts)) return CUDA_ERROR_INVALID_VALUE;
  if (srcDevice == dstDevice) return CUDA_ERROR_INVALID_DEVICE;  // what the driver answers
  *value = PeerFact(s, srcDevice, dstDevice, static_cast<size_t>(a));
  return CUDA_SUCCESS;
}

CUresult cuCtxEnablePeerAccess(CUcontext peerContext, unsigned int flags) {
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  CtxObj* peer = AsCtx(s, peerContext);
  if (peer == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  return Sync(s, proto::CallId::kCtxEnablePeerAccess, proto::CtxEnablePeerAccessReq{c->id, peer->id, flags});
}

CUresult cuCtxDisablePeerAccess(CUcontext peerContext) {
  RGPU_STATE_OR_RETURN(s);
  RGPU_CTX_OR_RETURN(s, c);
  CtxObj* peer = AsCtx(s, peerContext);
  if (peer == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  return Sync(s, proto::CallId::kCtxDisablePeerAccess, proto::CtxDisablePeerAccessReq{c->id, peer->id});
}

}  // extern "C"
