// cuSPARSE and cuSOLVER through rgpu: a CSR matrix-vector product with the
// generic API (cusparseSpMV), a Cholesky solve (potrf/potrs), an LU solve
// (getrf/getrs) and a symmetric eigensolver (syevd), printed as sums and
// residual checks.
#include <cusolverDn.h>
#include <cusparse.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "../programs/check.h"

#define CK_SP(x) CK_STATUS(x, CUSPARSE_STATUS_SUCCESS)
#define CK_SOL(x) CK_STATUS(x, CUSOLVER_STATUS_SUCCESS)

template <typename T>
T* ToDevice(const std::vector<T>& h) {
  T* d;
  CK_RT(cudaMalloc(&d, sizeof(T) * h.size()));
  CK_RT(cudaMemcpy(d, h.data(), sizeof(T) * h.size(), cudaMemcpyHostToDevice));
  return d;
}
template <typename T>
std::vector<T> ToHost(const T* d, size_t n) {
  std::vector<T> h(n);
  CK_RT(cudaMemcpy(h.data(), d, sizeof(T) * n, cudaMemcpyDeviceToHost));
  return h;
}

void SpMV() {
  // Tridiagonal n x n: 4 on the diagonal, -1 beside it.
  const int n = 10000;
  std::vector<int> rows{0}, cols;
  std::vector<float> vals, x(n);
  for (int i = 0; i < n; ++i) {
    for (int j = i - 1; j <= i + 1; ++j)
      if (j >= 0 && j < n) cols.push_back(j), vals.push_back(i == j ? 4.0f : -1.0f);
    rows.push_back(static_cast<int>(cols.size()));
    x[i] = static_cast<float>(i % 7);
  }
  int *d_rows = ToDevice(rows), *d_cols = ToDevice(cols);
  float *d_vals = ToDevice(vals), *d_x = ToDevice(x), *d_y;
  CK_RT(cudaMalloc(&d_y, sizeof(float) * n));
  cusparseHandle_t h;
  CK_SP(cusparseCreate(&h));
  cusparseSpMatDescr_t A;
  cusparseDnVecDescr_t vx, vy;
  CK_SP(cusparseCreateCsr(&A, n, n, static_cast<int64_t>(vals.size()), d_rows, d_cols, d_vals,
                          CUSPARSE_INDEX_32I, CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO,
                          CUDA_R_32F));
  CK_SP(cusparseCreateDnVec(&vx, n, d_x, CUDA_R_32F));
  CK_SP(cusparseCreateDnVec(&vy, n, d_y, CUDA_R_32F));
  float alpha = 1, beta = 0;
  size_t bytes = 0;
  CK_SP(cusparseSpMV_bufferSize(h, CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, A, vx, &beta, vy,
                                CUDA_R_32F, CUSPARSE_SPMV_ALG_DEFAULT, &bytes));
  void* buf = nullptr;
  if (bytes) CK_RT(cudaMalloc(&buf, bytes));
  CK_SP(cusparseSpMV(h, CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, A, vx, &beta, vy, CUDA_R_32F,
                     CUSPARSE_SPMV_ALG_DEFAULT, buf));
  auto y = ToHost(d_y, n);
  double s = 0, err = 0;
  for (int i = 0; i < n; ++i) {
    double want = 4.0 * x[i] - (i > 0 ? x[i - 1] : 0) - (i + 1 < n ? x[i + 1] : 0);
    err = std::fmax(err, std::fabs(y[i] - want));
    s += y[i];
  }
  printf("spmv sum %.3f, exact: %s\n", s, err == 0 ? "yes" : "no");
  CK_SP(cusparseDestroySpMat(A));
  CK_SP(cusparseDestroyDnVec(vx));
  CK_SP(cusparseDestroyDnVec(vy));
  CK_SP(cusparseDestroy(h));
}

void Solvers() {
  const int n = 64;
  std::vector<double> a(n * n), b(n);
  for (int i = 0; i < n; ++i) {
    b[i] = 1.0 + i % 5;
    for (int j = 0; j < n; ++j) a[i + j * n] = (i == j ? n : 0) + 1.0 / (1 + i + j);  // SPD
  }
  cusolverDnHandle_t h;
  CK_SOL(cusolverDnCreate(&h));
  int* d_info;
  CK_RT(cudaMalloc(&d_info, sizeof(int)));

  // Cholesky.
  double *d_a = ToDevice(a), *d_b = ToDevice(b);
  int lwork = 0;
  CK_SOL(cusolverDnDpotrf_bufferSize(h, CUBLAS_FILL_MODE_LOWER, n, d_a, n, &lwork));
  double* work;
  CK_RT(cudaMalloc(&work, sizeof(double) * (lwork > 0 ? lwork : 1)));
  CK_SOL(cusolverDnDpotrf(h, CUBLAS_FILL_MODE_LOWER, n, d_a, n, work, lwork, d_info));
  CK_SOL(cusolverDnDpotrs(h, CUBLAS_FILL_MODE_LOWER, n, 1, d_a, n, d_b, n, d_info));
  auto x = ToHost(d_b, n);
  int info = ToHost(d_info, 1)[0];
  double res = 0;
  for (int i = 0; i < n; ++i) {
    double r = -b[i];
    for (int j = 0; j < n; ++j) r += a[i + j * n] * x[j];
    res = std::fmax(res, std::fabs(r));
  }
  printf("potrf/potrs info %d residual < 1e-10: %s, x[0] = %.12e\n", info, res < 1e-10 ? "yes" : "no",
         x[0]);

  // LU.
  CK_RT(cudaMemcpy(d_a, a.data(), sizeof(double) * n * n, cudaMemcpyHostToDevice));
  CK_RT(cudaMemcpy(d_b, b.data(), sizeof(double) * n, cudaMemcpyHostToDevice));
  int* d_piv;
  CK_RT(cudaMalloc(&d_piv, sizeof(int) * n));
  CK_SOL(cusolverDnDgetrf_bufferSize(h, n, n, d_a, n, &lwork));
  CK_RT(cudaFree(work));
  CK_RT(cudaMalloc(&work, sizeof(double) * (lwork > 0 ? lwork : 1)));
  CK_SOL(cusolverDnDgetrf(h, n, n, d_a, n, work, d_piv, d_info));
  CK_SOL(cusolverDnDgetrs(h, CUBLAS_OP_N, n, 1, d_a, n, d_piv, d_b, n, d_info));
  auto x2 = ToHost(d_b, n);
  double diff = 0;
  for (int i = 0; i < n; ++i) diff = std::fmax(diff, std::fabs(x2[i] - x[i]));
  printf("getrf/getrs info %d agrees with cholesky: %s\n", ToHost(d_info, 1)[0],
         diff < 1e-10 ? "yes" : "no");

  // Symmetric eigenvalues.
  CK_RT(cudaMemcpy(d_a, a.data(), sizeof(double) * n * n, cudaMemcpyHostToDevice));
  double* d_w;
  CK_RT(cudaMalloc(&d_w, sizeof(double) * n));
  CK_SOL(cusolverDnDsyevd_bufferSize(h, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, n, d_a, n,
                                     d_w, &lwork));
  CK_RT(cudaFree(work));
  CK_RT(cudaMalloc(&work, sizeof(double) * (lwork > 0 ? lwork : 1)));
  CK_SOL(cusolverDnDsyevd(h, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, n, d_a, n, d_w, work,
                          lwork, d_info));
  auto w = ToHost(d_w, n);
  double trace = 0, wsum = 0;
  for (int i = 0; i < n; ++i) trace += a[i + i * n], wsum += w[i];
  printf("syevd info %d eigenvalue sum = trace: %s, smallest %.12e\n", ToHost(d_info, 1)[0],
         std::fabs(trace - wsum) < 1e-8 ? "yes" : "no", w[0]);
  CK_SOL(cusolverDnDestroy(h));
}

int main() {
  SpMV();
  Solvers();
  printf("cusparse/cusolver ok\n");
  return 0;
}
