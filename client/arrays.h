// The client's mirror of its CUDA arrays, texture and surface objects
// (client/api_array.cc), held in ClientState::arrays().
//
// Arrays are named by the client: the CUarray an application sees is the
// address of an ArrayObj, whose `id` names it on the wire (no round trip at
// creation). Texture and surface objects are the worker driver's own values,
// since kernels receive them as arguments and the GPU interprets them; the
// descriptors they were made from are kept here so that the Get*Desc
// queries are answered locally.
#pragma once
#include <cuda.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

namespace rgpu::client {

struct ArrayObj {
  uint64_t id = 0;
  uint64_t ctx_id = 0;  // wire id of the context it was made in
  CUDA_ARRAY3D_DESCRIPTOR desc{};
  uint64_t row_bytes = 0, rows = 1, slices = 1;
};

// A texture or surface object (a surface has no texture or view).
struct TexObj {
  uint64_t ctx_id = 0;  // wire id of the context it was made in
  CUDA_RESOURCE_DESC res{};
  CUDA_TEXTURE_DESC tex{};
  bool has_view = false;
  CUDA_RESOURCE_VIEW_DESC view{};
};

struct ArrayState {
  std::mutex mu;
  std::map<const void*, std::unique_ptr<ArrayObj>> arrays;  // handle -> object
  std::map<uint64_t, TexObj> textures;                       // CUtexObject -> descriptors
  std::map<uint64_t, TexObj> surfaces;                       // CUsurfObject -> resource
};

}  // namespace rgpu::client

namespace rgpu::client {
class ClientState;
// Copies the array behind handle `a` into *out; false for an unknown handle.
bool FindArray(ClientState* s, CUarray a, ArrayObj* out);
// Bytes of one channel of an array format; 0 for the formats arrays here
// don't support (block-compressed, YUV, packed).
uint64_t FormatBytes(int format);
// The cuMemcpy3D path (client/api_copy.cc), any memory types.
CUresult Memcpy3DAny(const CUDA_MEMCPY3D& c, CUstream h, bool async, bool per_thread);
}  // namespace rgpu::client
