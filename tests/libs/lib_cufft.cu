// cuFFT through rgpu: 1D complex transforms (batched, forward then inverse),
// a 2D real-to-complex transform and a plan on a stream, compared with the
// local run by their sums (same GPU, same library: same bits).
#include <cufft.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "../programs/check.h"

#define CK_FFT(x) CK_STATUS(x, CUFFT_SUCCESS)

int main() {
  const int n = 4096, batch = 8;
  std::vector<cufftComplex> h(n * batch);
  for (int i = 0; i < n * batch; ++i) h[i] = {std::sin(0.01f * i), std::cos(0.003f * i)};
  cufftComplex* d;
  CK_RT(cudaMalloc(&d, sizeof(cufftComplex) * n * batch));
  CK_RT(cudaMemcpy(d, h.data(), sizeof(cufftComplex) * n * batch, cudaMemcpyHostToDevice));
  cufftHandle plan;
  CK_FFT(cufftPlan1d(&plan, n, CUFFT_C2C, batch));
  CK_FFT(cufftExecC2C(plan, d, d, CUFFT_FORWARD));
  std::vector<cufftComplex> f(n * batch);
  CK_RT(cudaMemcpy(f.data(), d, sizeof(cufftComplex) * n * batch, cudaMemcpyDeviceToHost));
  double s = 0;
  for (auto& c : f) s += std::fabs(c.x) + std::fabs(c.y);
  printf("c2c forward abs-sum %.9e, bin 1 of batch 0 = (%.6e, %.6e)\n", s, f[1].x, f[1].y);
  CK_FFT(cufftExecC2C(plan, d, d, CUFFT_INVERSE));
  CK_RT(cudaMemcpy(f.data(), d, sizeof(cufftComplex) * n * batch, cudaMemcpyDeviceToHost));
  double err = 0;
  for (int i = 0; i < n * batch; ++i)
    err = std::fmax(err, std::fabs(f[i].x / n - h[i].x) + std::fabs(f[i].y / n - h[i].y));
  printf("round trip max error < 1e-4: %s\n", err < 1e-4 ? "yes" : "no");
  CK_FFT(cufftDestroy(plan));

  // 2D real-to-complex on a stream.
  const int nx = 256, ny = 256;
  float* real;
  cufftComplex* spec;
  CK_RT(cudaMalloc(&real, sizeof(float) * nx * ny));
  CK_RT(cudaMalloc(&spec, sizeof(cufftComplex) * nx * (ny / 2 + 1)));
  std::vector<float> hr(nx * ny);
  for (int i = 0; i < nx * ny; ++i) hr[i] = static_cast<float>((i * 37) % 101) / 101.0f;
  CK_RT(cudaMemcpy(real, hr.data(), sizeof(float) * nx * ny, cudaMemcpyHostToDevice));
  cudaStream_t st;
  CK_RT(cudaStreamCreate(&st));
  cufftHandle p2;
  CK_FFT(cufftPlan2d(&p2, nx, ny, CUFFT_R2C));
  CK_FFT(cufftSetStream(p2, st));
  CK_FFT(cufftExecR2C(p2, real, spec));
  CK_RT(cudaStreamSynchronize(st));
  std::vector<cufftComplex> hs(nx * (ny / 2 + 1));
  CK_RT(cudaMemcpy(hs.data(), spec, sizeof(cufftComplex) * hs.size(), cudaMemcpyDeviceToHost));
  double s2 = 0;
  for (auto& c : hs) s2 += std::fabs(c.x) + std::fabs(c.y);
  printf("r2c 2D abs-sum %.9e, DC = %.6e\n", s2, hs[0].x);
  CK_FFT(cufftDestroy(p2));
  CK_RT(cudaStreamDestroy(st));
  printf("cufft ok\n");
  return 0;
}
