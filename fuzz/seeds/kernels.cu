// Kernels for the worker harness's seed inputs (fuzz/make_seeds.cc): the
// sim backend runs kernels as host functions registered by name
// (backend/sim/test_kernels.cc), so these mirror kernels it knows.
// Built by fuzz/make_corpus.sh: nvcc -cubin -arch=sm_90 and -fatbin.
__device__ float g_factor = 3.0f;

__global__ void vectorAdd(const float* a, const float* b, float* c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

extern "C" __global__ void multiplyByGlobal(float* p, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] *= g_factor;
}

extern "C" __global__ void addRowIndex(int* p, size_t pitch, int width, int height) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y;
  if (x < width && y < height) {
    int* row = reinterpret_cast<int*>(reinterpret_cast<char*>(p) + y * pitch);
    row[x] += y + 1;
  }
}

extern "C" __global__ void clusterRank(int* out) {
  unsigned rank;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
  if (threadIdx.x == 0) out[blockIdx.x] = static_cast<int>(rank);
}
