// cuDNN through rgpu: a handle made after small device allocations (cuDNN's
// cudnnCreate then asks for mapped pinned memory that the driver places off
// a page boundary), a 2D convolution forward checked against a CPU
// reference, and the handle destroyed. Prints "OK lib_cudnn".
#include <cudnn.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "../programs/check.h"

#define CK_DNN(x) CK_STATUS(x, CUDNN_STATUS_SUCCESS)

int main() {
  // Small allocations first, as a framework's would be.
  void* tiny[3];
  for (void*& p : tiny) CK_RT(cudaMalloc(&p, 4));
  cudnnHandle_t h;
  CK_DNN(cudnnCreate(&h));

  const int n = 2, c = 3, hw = 8, k = 4, r = 3, out_hw = hw - r + 1;
  std::vector<float> x(n * c * hw * hw), w(k * c * r * r);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 37) % 17) / 17.0f - 0.5f;
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>((i * 11) % 13) / 13.0f - 0.5f;
  float *dx, *dw, *dy;
  CK_RT(cudaMalloc(&dx, x.size() * sizeof(float)));
  CK_RT(cudaMalloc(&dw, w.size() * sizeof(float)));
  CK_RT(cudaMalloc(&dy, n * k * out_hw * out_hw * sizeof(float)));
  CK_RT(cudaMemcpy(dx, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice));
  CK_RT(cudaMemcpy(dw, w.data(), w.size() * sizeof(float), cudaMemcpyHostToDevice));

  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd;
  CK_DNN(cudnnCreateTensorDescriptor(&xd));
  CK_DNN(cudnnCreateTensorDescriptor(&yd));
  CK_DNN(cudnnCreateFilterDescriptor(&wd));
  CK_DNN(cudnnCreateConvolutionDescriptor(&cd));
  CK_DNN(cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, hw, hw));
  CK_DNN(cudnnSetFilter4dDescriptor(wd, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, k, c, r, r));
  CK_DNN(cudnnSetConvolution2dDescriptor(cd, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  int on, oc, oh, ow;
  CK_DNN(cudnnGetConvolution2dForwardOutputDim(cd, xd, wd, &on, &oc, &oh, &ow));
  printf("output %dx%dx%dx%d\n", on, oc, oh, ow);
  CK_DNN(cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, on, oc, oh, ow));
  const cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  size_t ws_size = 0;
  CK_DNN(cudnnGetConvolutionForwardWorkspaceSize(h, xd, wd, cd, yd, algo, &ws_size));
  void* ws = nullptr;
  if (ws_size) CK_RT(cudaMalloc(&ws, ws_size));
  const float one = 1, zero = 0;
  CK_DNN(cudnnConvolutionForward(h, &one, xd, dx, wd, dw, cd, algo, ws, ws_size, &zero, yd, dy));
  std::vector<float> y(n * k * out_hw * out_hw);
  CK_RT(cudaMemcpy(y.data(), dy, y.size() * sizeof(float), cudaMemcpyDeviceToHost));

  double max_err = 0;
  for (int b = 0; b < n; ++b)
    for (int o = 0; o < k; ++o)
      for (int i = 0; i < out_hw; ++i)
        for (int j = 0; j < out_hw; ++j) {
          double want = 0;
          for (int ch = 0; ch < c; ++ch)
            for (int u = 0; u < r; ++u)
              for (int v = 0; v < r; ++v)
                want += x[((b * c + ch) * hw + i + u) * hw + j + v] * w[((o * c + ch) * r + u) * r + v];
          max_err = std::fmax(max_err, std::fabs(want - y[((b * k + o) * out_hw + i) * out_hw + j]));
        }
  printf("conv forward matches the CPU: %s\n", max_err < 1e-4 ? "yes" : "NO");
  CK_DNN(cudnnDestroyTensorDescriptor(xd));
  CK_DNN(cudnnDestroyTensorDescriptor(yd));
  CK_DNN(cudnnDestroyFilterDescriptor(wd));
  CK_DNN(cudnnDestroyConvolutionDescriptor(cd));
  CK_DNN(cudnnDestroy(h));
  if (max_err >= 1e-4) return 1;
  printf("OK lib_cudnn\n");
  return 0;
}
