// ArrayTable: the CUDA arrays, texture objects and surface objects of one
// session (handlers_array.cc).
//
// Arrays are named by the client (u64 ids, no round trip); the table maps
// them to the driver's CUarray and keeps their extent (row bytes, rows,
// slices), so every copy into or out of an array is checked to lie inside
// it before the driver sees it. Texture and surface objects are the
// driver's own 64-bit values (kernels receive them as arguments, so the
// client must hand out the real value); the table records which ones this
// session made, so it can destroy only those and free the rest at the end.
//
// At session end (ReleaseAll) objects are destroyed first, then every array
// is zeroed by a copy from a zero host buffer, checked to read back as zero
// (first and last rows), and destroyed: arrays are device memory the next
// user of the card must not see.
//
// Used only from the worker's executor thread.
#pragma once
#include <cuda.h>

#include <cstdint>
#include <unordered_map>

#include "backend/driver_table.h"
#include "common/array_format.h"
#include "common/status.h"

namespace rgpu::worker {

struct ArrayEntry {
  CUarray array = nullptr;
  uint64_t ctx_id = 0;       // the client context it was made in
  CUcontext ctx = nullptr;
  uint64_t row_bytes = 0;    // width x channels x channel bytes
  uint64_t rows = 1;         // height (1 for a 1D array)
  uint64_t slices = 1;       // depth or layers (1 for 1D/2D)
  uint32_t flags = 0;        // CUDA_ARRAY3D_* flags
};

class ArrayTable {
 public:
  Status Add(uint64_t id, const ArrayEntry& e);
  // INVALID_HANDLE for an id this session did not create.
  Result<ArrayEntry*> Find(uint64_t id);
  Result<ArrayEntry> Take(uint64_t id);
  // Texture (surface = false) and surface objects.
  void AddObject(bool surface, uint64_t value, uint64_t ctx_id);
  bool TakeObject(bool surface, uint64_t value);
  bool empty() const { return arrays_.empty() && textures_.empty() && surfaces_.empty(); }
  // The client destroyed context `ctx_id`: the driver freed what it held.
  void ForgetContext(uint64_t ctx_id);
  // Session end: destroys objects, wipes and destroys arrays (see above).
  // Returns the array bytes wiped; non-OK if a wipe or its check failed
  // (everything is destroyed regardless).
  Result<uint64_t> ReleaseAll(const backend::DriverTable& d);

 private:
  std::unordered_map<uint64_t, ArrayEntry> arrays_;
  std::unordered_map<uint64_t, uint64_t> textures_;  // value -> ctx id
  std::unordered_map<uint64_t, uint64_t> surfaces_;
};

// ArrayFormatBytes: common/array_format.h.
using rgpu::ArrayFormatBytes;

}  // namespace rgpu::worker
