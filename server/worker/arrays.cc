// ArrayTable (arrays.h).
#include "server/worker/arrays.h"

#include <algorithm>
#include <string>
#include <vector>

namespace rgpu::worker {
namespace {

// Zeroes one array with copies from a zero host buffer (at most 16 MiB per
// copy), then reads back its first and last rows and checks they are zero.
Status WipeArray(const backend::DriverTable& d, const ArrayEntry& e, uint64_t* bytes) {
  constexpr uint64_t kChunk = 16u << 20;
  uint64_t rows_per_copy = std::max<uint64_t>(1, kChunk / e.row_bytes);
  std::vector<uint8_t> zero(std::min(rows_per_copy, e.rows) * e.row_bytes, 0);
  for (uint64_t z = 0; z < e.slices; ++z) {
    for (uint64_t y = 0; y < e.rows; y += rows_per_copy) {
      CUDA_MEMCPY3D c{};
      c.srcMemoryType = CU_MEMORYTYPE_HOST;
      c.srcHost = zero.data();
      c.srcPitch = e.row_bytes;
      c.srcHeight = rows_per_copy;
      c.dstMemoryType = CU_MEMORYTYPE_ARRAY;
      c.dstArray = e.array;
      c.dstY = y;
      c.dstZ = z;
      c.WidthInBytes = e.row_bytes;
      c.Height = std::min(rows_per_copy, e.rows - y);
      c.Depth = 1;
      if (CUresult r = d.cuMemcpy3D_v2(&c); r != CUDA_SUCCESS)
        return Status::Cuda(r, "array wipe: cuMemcpy3D failed");
    }
  }
  std::vector<uint8_t> back(e.row_bytes, 1);
  for (uint64_t where : {uint64_t{0}, e.rows * e.slices - 1}) {
    CUDA_MEMCPY3D c{};
    c.srcMemoryType = CU_MEMORYTYPE_ARRAY;
    c.srcArray = e.array;
    c.srcY = where % e.rows;
    c.srcZ = where / e.rows;
    c.dstMemoryType = CU_MEMORYTYPE_HOST;
    c.dstHost = back.data();
    c.dstPitch = e.row_bytes;
    c.WidthInBytes = e.row_bytes;
    c.Height = 1;
    c.Depth = 1;
    if (CUresult r = d.cuMemcpy3D_v2(&c); r != CUDA_SUCCESS)
      return Status::Cuda(r, "array wipe: read-back failed");
    if (std::any_of(back.begin(), back.end(), [](uint8_t b) { return b != 0; }))
      return Status::Internal("array wipe: data left behind");
  }
  *bytes += e.row_bytes * e.rows * e.slices;
  return {};
}

}  // namespace

Status ArrayTable::Add(uint64_t id, const ArrayEntry& e) {
  if (id == 0 || !arrays_.emplace(id, e).second)
    return Status::Protocol("array id " + std::to_string(id) + " is 0 or already in use");
  return {};
}

Result<ArrayEntry*> ArrayTable::Find(uint64_t id) {
  auto it = arrays_.find(id);
  if (it == arrays_.end())
    return Status::Cuda(CUDA_ERROR_INVALID_HANDLE, "no array with id " + std::to_string(id));
  return &it->second;
}

Result<ArrayEntry> ArrayTable::Take(uint64_t id) {
  auto it = arrays_.find(id);
  if (it == arrays_.end())
    return Status::Cuda(CUDA_ERROR_INVALID_HANDLE, "no array with id " + std::to_string(id));
  ArrayEntry e = it->second;
  arrays_.erase(it);
  return e;
}

void ArrayTable::AddObject(bool surface, uint64_t value, uint64_t ctx_id) {
  (surface ? surfaces_ : textures_)[value] = ctx_id;
}

bool ArrayTable::TakeObject(bool surface, uint64_t value) {
  return (surface ? surfaces_ : textures_).erase(value) != 0;
}

void ArrayTable::ForgetContext(uint64_t ctx_id) {
  std::erase_if(arrays_, [&](const auto& kv) { return kv.second.ctx_id == ctx_id; });
  std::erase_if(textures_, [&](const auto& kv) { return kv.second == ctx_id; });
  std::erase_if(surfaces_, [&](const auto& kv) { return kv.second == ctx_id; });
}

Result<uint64_t> ArrayTable::ReleaseAll(const backend::DriverTable& d) {
  // Objects first: they refer to the arrays.
  for (auto& [value, ctx] : textures_)
    if (d.cuTexObjectDestroy) d.cuTexObjectDestroy(value);
  for (auto& [value, ctx] : surfaces_)
    if (d.cuSurfObjectDestroy) d.cuSurfObjectDestroy(value);
  textures_.clear();
  surfaces_.clear();
  Status first;
  uint64_t wiped = 0;
  for (auto& [id, e] : arrays_) {
    if (d.cuCtxSetCurrent) d.cuCtxSetCurrent(e.ctx);
    if (Status st = WipeArray(d, e, &wiped); !st.ok() && first.ok()) first = std::move(st);
    if (d.cuArrayDestroy) d.cuArrayDestroy(e.array);
  }
  arrays_.clear();
  if (!first.ok()) return first;
  return wiped;
}

}  // namespace rgpu::worker
