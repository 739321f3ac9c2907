// cuRAND through rgpu: the host API's generators (XORWOW, Philox, MRG32k3a,
// Sobol) and the device API (curand_init in a kernel), printed as sums.
#include <curand.h>
#include <curand_kernel.h>

#include <cstdio>
#include <vector>

#include "../programs/check.h"

#define CK_RAND(x) CK_STATUS(x, CURAND_STATUS_SUCCESS)

__global__ void DeviceApi(float* out, unsigned long long seed) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  curandStatePhilox4_32_10_t s;
  curand_init(seed, i, 0, &s);
  out[i] = curand_normal(&s);
}

double Sum(const float* d, int n) {
  std::vector<float> h(n);
  CK_RT(cudaMemcpy(h.data(), d, sizeof(float) * n, cudaMemcpyDeviceToHost));
  double s = 0;
  for (float v : h) s += v;
  return s;
}

int main() {
  const int n = 1 << 20;
  float* d;
  CK_RT(cudaMalloc(&d, sizeof(float) * n));
  const struct {
    const char* name;
    curandRngType_t type;
  } gens[] = {{"xorwow", CURAND_RNG_PSEUDO_XORWOW},
              {"philox", CURAND_RNG_PSEUDO_PHILOX4_32_10},
              {"mrg32k3a", CURAND_RNG_PSEUDO_MRG32K3A},
              {"sobol32", CURAND_RNG_QUASI_SOBOL32}};
  for (const auto& g : gens) {
    curandGenerator_t gen;
    CK_RAND(curandCreateGenerator(&gen, g.type));
    if (g.type != CURAND_RNG_QUASI_SOBOL32) CK_RAND(curandSetPseudoRandomGeneratorSeed(gen, 1234));
    CK_RAND(curandGenerateUniform(gen, d, n));
    double u = Sum(d, n);
    CK_RAND(curandGenerateNormal(gen, d, n, 0.0f, 1.0f));
    double z = Sum(d, n);
    printf("%-9s uniform sum %.6f normal sum %.6f\n", g.name, u, z);
    CK_RAND(curandDestroyGenerator(gen));
  }
  DeviceApi<<<n / 256, 256>>>(d, 42);
  CK_RT(cudaGetLastError());
  printf("device api normal sum %.6f\n", Sum(d, n));
  printf("curand ok\n");
  return 0;
}
