// Kernels loaded by driver_api.cu through the driver API. Built separately
// with nvcc -fatbin and -cubin and embedded into driver_api with bin2c, so
// driver_api itself contains no device code.
struct Affine {
  float scale;
  int offset;
  double bias;
};

__device__ int g_launches;          // counted by every launch of scaleOffset
__device__ float g_factor = 3.0f;   // read by multiplyByGlobal, written by the host

// out[i] = in[i] * a.scale + a.offset + a.bias, one element per thread.
__global__ void scaleOffset(const float* in, float* out, int n, Affine a) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = in[i] * a.scale + static_cast<float>(a.offset) + static_cast<float>(a.bias);
  if (i == 0) atomicAdd(&g_launches, 1);
}

extern "C" __global__ void multiplyByGlobal(float* p, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] *= g_factor;
}

// Adds (row + 1) to each of `width` ints of each pitched row.
extern "C" __global__ void addRowIndex(int* p, size_t pitch, int width, int height) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y;
  if (x < width && y < height) {
    int* row = reinterpret_cast<int*>(reinterpret_cast<char*>(p) + y * pitch);
    row[x] += y + 1;
  }
}

// Launched with a cluster dimension through cuLaunchKernelEx: writes the
// block's cluster rank (blockIdx.x % 2 for clusters of 2 along x).
extern "C" __global__ void clusterRank(int* out) {
  unsigned rank;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
  if (threadIdx.x == 0) out[blockIdx.x] = static_cast<int>(rank);
}
