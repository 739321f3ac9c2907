// Kernels whose nvcc outputs (cubin, fatbin, PTX) the image/ and backend/sim/
// unit tests parse and load. Changing a signature here changes the expected
// layouts in image_test.cc and sim_module_test.cc.
struct Triple {
  float a;
  int b;
  double c;
};
struct Big {
  char data[300];
};

__device__ int g_counter;
__device__ float g_table[16] = {1, 2, 3};
__constant__ float c_coef[4] = {0.5f, 1.5f, 2.5f, 3.5f};
// Unused by the kernels (their code must stay as the recorded driver probe
// saw it), but still in every image: a managed variable for the parsers.
__managed__ int m_steps = 7;

extern "C" __global__ void add(const float* a, const float* b, float* c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i] + c_coef[0] - 0.5f + g_table[0] - 1.0f;
}

__global__ void saxpy(float a, const float* x, float* y, int n, Triple t, char ch, double d) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
    y[i] = a * x[i] + y[i] + t.a + ch + static_cast<float>(d);
  }
  atomicAdd(&g_counter, 1);
}

template <typename T>
__global__ void fill(T* p, T v, size_t n) {
  size_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] = v;
}
template __global__ void fill<int>(int*, int, size_t);

__global__ void noparams() {}

__global__ void __launch_bounds__(256, 2) bounded(float* p, int n) {
  __shared__ float tile[128];
  tile[threadIdx.x % 128] = p[threadIdx.x];
  __syncthreads();
  if (threadIdx.x < n) p[threadIdx.x] = tile[(threadIdx.x + 1) % 128];
}

// Clusters need sm_90; the sm_80 / sm_75 images simply lack this kernel.
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
__global__ void __cluster_dims__(2, 1, 1) clustered(float* p) { p[threadIdx.x] = 1.0f; }
#endif

__global__ void bigparam(Big b, int* out) { out[0] = b.data[0] + b.data[299]; }
