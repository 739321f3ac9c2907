// Sim driver functions: peer access between the simulated devices of one
// process (multi-GPU sessions).
//
// The simulated host is an NVLink box: every pair of distinct devices can
// access each other (cuDeviceCanAccessPeer 1, P2P attributes: access, native
// atomics and array access supported, performance rank 0). A device is not
// its own peer (cuDeviceCanAccessPeer answers 0, as the driver does, and
// cuDeviceGetP2PAttribute fails with CUDA_ERROR_INVALID_DEVICE). Peer access
// is recorded per context, with the driver's errors for enabling it twice or
// disabling it when not enabled; it changes nothing else, since device memory
// is host memory that every simulated kernel and copy can reach anyway.
#include <algorithm>

#include "backend/sim/sim_state.h"

namespace rgpu::backend::sim {

CUresult cuDeviceCanAccessPeer(int* canAccessPeer, CUdevice dev, CUdevice peerDev) {
  SIM_ENTER(s);
  if (canAccessPeer == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckDevice(dev); r != CUDA_SUCCESS) return r;
  if (CUresult r = s->CheckDevice(peerDev); r != CUDA_SUCCESS) return r;
  *canAccessPeer = dev != peerDev ? 1 : 0;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetP2PAttribute(int* value, CUdevice_P2PAttribute attrib, CUdevice srcDevice,
                                 CUdevice dstDevice) {
  SIM_ENTER(s);
  if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = s->CheckDevice(srcDevice); r != CUDA_SUCCESS) return r;
  if (CUresult r = s->CheckDevice(dstDevice); r != CUDA_SUCCESS) return r;
  if (srcDevice == dstDevice) return CUDA_ERROR_INVALID_DEVICE;
  switch (EnumValue(attrib)) {
    case CU_DEVICE_P2P_ATTRIBUTE_PERFORMANCE_RANK: *value = 0; break;
    case CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED:
    case CU_DEVICE_P2P_ATTRIBUTE_NATIVE_ATOMIC_SUPPORTED:
    case CU_DEVICE_P2P_ATTRIBUTE_CUDA_ARRAY_ACCESS_SUPPORTED: *value = 1; break;
    case CU_DEVICE_P2P_ATTRIBUTE_ONLY_PARTIAL_NATIVE_ATOMIC_SUPPORTED: *value = 0; break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult cuCtxEnablePeerAccess(CUcontext peerContext, unsigned int Flags) {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  if (Flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (peerContext == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  uint64_t peer_id = FromHandle(peerContext);
  Context* peer = s->FindContext(peer_id);
  if (peer == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  if (peer->device == ctx->device) return CUDA_ERROR_INVALID_DEVICE;
  if (std::find(ctx->peers.begin(), ctx->peers.end(), peer_id) != ctx->peers.end())
    return CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED;
  ctx->peers.push_back(peer_id);
  return CUDA_SUCCESS;
}

CUresult cuCtxDisablePeerAccess(CUcontext peerContext) {
  SIM_ENTER(s);
  SIM_CURRENT_CTX(s, ctx);
  if (peerContext == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  uint64_t peer_id = FromHandle(peerContext);
  if (s->FindContext(peer_id) == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  auto it = std::find(ctx->peers.begin(), ctx->peers.end(), peer_id);
  if (it == ctx->peers.end()) return CUDA_ERROR_PEER_ACCESS_NOT_ENABLED;
  ctx->peers.erase(it);
  return CUDA_SUCCESS;
}

}  // namespace rgpu::backend::sim
