// cuBLAS from a C++ program (not torch): SGEMM, DGEMM, GemmEx in bf16 with
// fp32 accumulation, a strided batched GEMM and a level-1 call, with the
// handle on a stream; printed as sums (same GPU, same library: same bits).
#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <cstdio>
#include <vector>

#include "../programs/check.h"

#define CK_BLAS(x) CK_STATUS(x, CUBLAS_STATUS_SUCCESS)

template <typename T>
double SumOf(const T* d, size_t n) {
  std::vector<T> h(n);
  CK_RT(cudaMemcpy(h.data(), d, sizeof(T) * n, cudaMemcpyDeviceToHost));
  double s = 0;
  for (auto v : h) s += static_cast<double>(v);
  return s;
}

int main() {
  const int m = 512, n = 384, k = 256, batch = 4;
  std::vector<float> ha(m * k * batch), hb(k * n * batch);
  for (size_t i = 0; i < ha.size(); ++i) ha[i] = static_cast<float>((i * 13) % 17) / 17.0f - 0.5f;
  for (size_t i = 0; i < hb.size(); ++i) hb[i] = static_cast<float>((i * 7) % 11) / 11.0f - 0.5f;
  float *a, *b, *c;
  CK_RT(cudaMalloc(&a, sizeof(float) * ha.size()));
  CK_RT(cudaMalloc(&b, sizeof(float) * hb.size()));
  CK_RT(cudaMalloc(&c, sizeof(float) * m * n * batch));
  CK_RT(cudaMemcpy(a, ha.data(), sizeof(float) * ha.size(), cudaMemcpyHostToDevice));
  CK_RT(cudaMemcpy(b, hb.data(), sizeof(float) * hb.size(), cudaMemcpyHostToDevice));
  cublasHandle_t h;
  CK_BLAS(cublasCreate(&h));
  cudaStream_t st;
  CK_RT(cudaStreamCreate(&st));
  CK_BLAS(cublasSetStream(h, st));
  CK_BLAS(cublasSetMathMode(h, CUBLAS_PEDANTIC_MATH));
  float alpha = 1, beta = 0;
  CK_BLAS(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, a, m, b, k, &beta, c, m));
  CK_RT(cudaStreamSynchronize(st));
  printf("sgemm sum %.6f\n", SumOf(c, m * n));

  CK_BLAS(cublasSgemmStridedBatched(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, a, k, m * k, b,
                                    k, k * n, &beta, c, m, m * n, batch));
  CK_RT(cudaStreamSynchronize(st));
  printf("strided batched sum %.6f\n", SumOf(c, m * n * batch));

  std::vector<double> hd(m * k);
  for (size_t i = 0; i < hd.size(); ++i) hd[i] = ha[i];
  double *da, *dc;
  CK_RT(cudaMalloc(&da, sizeof(double) * m * k));
  CK_RT(cudaMalloc(&dc, sizeof(double) * m * m));
  CK_RT(cudaMemcpy(da, hd.data(), sizeof(double) * hd.size(), cudaMemcpyHostToDevice));
  double dalpha = 1, dbeta = 0;
  CK_BLAS(cublasDgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, m, m, k, &dalpha, da, m, da, m, &dbeta, dc, m));
  CK_RT(cudaStreamSynchronize(st));
  printf("dgemm (A A^T) sum %.9f\n", SumOf(dc, m * m));

  std::vector<__nv_bfloat16> hab(m * k), hbb(k * n);
  for (int i = 0; i < m * k; ++i) hab[i] = __float2bfloat16(ha[i]);
  for (int i = 0; i < k * n; ++i) hbb[i] = __float2bfloat16(hb[i]);
  __nv_bfloat16 *ab, *bb;
  CK_RT(cudaMalloc(&ab, sizeof(__nv_bfloat16) * m * k));
  CK_RT(cudaMalloc(&bb, sizeof(__nv_bfloat16) * k * n));
  CK_RT(cudaMemcpy(ab, hab.data(), sizeof(__nv_bfloat16) * m * k, cudaMemcpyHostToDevice));
  CK_RT(cudaMemcpy(bb, hbb.data(), sizeof(__nv_bfloat16) * k * n, cudaMemcpyHostToDevice));
  CK_BLAS(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
  CK_BLAS(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, ab, CUDA_R_16BF, m, bb,
                       CUDA_R_16BF, k, &beta, c, CUDA_R_32F, m, CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT));
  CK_RT(cudaStreamSynchronize(st));
  printf("gemmex bf16 sum %.6f\n", SumOf(c, m * n));

  float dot = 0;
  CK_BLAS(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
  CK_BLAS(cublasSdot(h, m * k, a, 1, a, 1, &dot));
  printf("sdot %.6f\n", dot);
  CK_BLAS(cublasDestroy(h));
  CK_RT(cudaStreamDestroy(st));
  printf("cublas ok\n");
  return 0;
}
