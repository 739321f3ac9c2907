// A CUDA graph whose memcpy nodes copy from and to host memory, as the CUDA
// sample simpleCudaGraphs builds it: host input -> device (1D memcpy node),
// a kernel, device -> host output (3D-params memcpy node, pageable memory),
// a host node reading the output, with dependencies. Launched several times
// with new host input each time; every launch must see the input as it was
// when launched and leave its output in host memory by the stream's
// synchronisation. Also: node parameter updates in the executable graph,
// a graph mixing a device-only part, and cudaGraphUpload.
#define E2E_PROGRAM "graph_host_copies"
#include <cuda_runtime.h>

#include <cstdio>
#include <vector>

#include "runtime_check.h"

// The sim runs this kernel by its mangled name (backend/sim/test_kernels.cc).
__global__ void scaleInPlace(float* x, float s, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= s;
}

struct HostCheck {
  const float* out;
  int n;
  float want0;  // out[0] expected when the host node runs
  int seen = 0;
  int wrong = 0;
};
static void CUDART_CB Inspect(void* arg) {
  auto* h = static_cast<HostCheck*>(arg);
  ++h->seen;
  if (h->out[0] != h->want0) ++h->wrong;
}

int main() {
  const int n = 4096;
  const size_t bytes = n * sizeof(float);
  std::vector<float> in(n), out(n);  // pageable host memory
  float* d = nullptr;
  CHECK(cudaMalloc(&d, bytes));
  cudaStream_t stream;
  CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

  cudaGraph_t graph;
  CHECK(cudaGraphCreate(&graph, 0));
  cudaGraphNode_t h2d, kernel, d2h, host;
  CHECK(cudaGraphAddMemcpyNode1D(&h2d, graph, nullptr, 0, d, in.data(), bytes, cudaMemcpyHostToDevice));
  float scale = 3.0f;
  int count = n;
  void* args[] = {&d, &scale, &count};
  cudaKernelNodeParams kp = {};
  kp.func = reinterpret_cast<void*>(scaleInPlace);
  kp.gridDim = dim3((n + 255) / 256);
  kp.blockDim = dim3(256);
  kp.kernelParams = args;
  CHECK(cudaGraphAddKernelNode(&kernel, graph, &h2d, 1, &kp));
  cudaMemcpy3DParms cp = {};
  cp.srcPtr = make_cudaPitchedPtr(d, bytes, n, 1);
  cp.dstPtr = make_cudaPitchedPtr(out.data(), bytes, n, 1);
  cp.extent = make_cudaExtent(bytes, 1, 1);
  cp.kind = cudaMemcpyDeviceToHost;
  CHECK(cudaGraphAddMemcpyNode(&d2h, graph, &kernel, 1, &cp));
  HostCheck check{out.data(), n, 0};
  cudaHostNodeParams hp = {Inspect, &check};
  CHECK(cudaGraphAddHostNode(&host, graph, &d2h, 1, &hp));

  cudaGraphExec_t exec;
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  CHECK(cudaGraphUpload(exec, stream));
  for (int launch = 0; launch < 3; ++launch) {
    for (int i = 0; i < n; ++i) in[i] = float(i + launch * 100);
    check.want0 = 3.0f * float(launch * 100);
    CHECK(cudaGraphLaunch(exec, stream));
    CHECK(cudaStreamSynchronize(stream));
    for (int i = 0; i < n; ++i)
      EXPECT(out[i] == 3.0f * in[i], "launch %d: out[%d] = %f, want %f", launch, i, out[i], 3.0f * in[i]);
  }
  EXPECT(check.seen == 3 && check.wrong == 0, "host node: %d runs, %d saw stale output", check.seen, check.wrong);

  // A new scale in the executable graph.
  scale = 0.5f;
  CHECK(cudaGraphExecKernelNodeSetParams(exec, kernel, &kp));
  for (int i = 0; i < n; ++i) in[i] = float(2 * i);
  check.want0 = 0.0f;
  CHECK(cudaGraphLaunch(exec, stream));
  CHECK(cudaStreamSynchronize(stream));
  for (int i = 0; i < n; ++i) EXPECT(out[i] == float(i), "after set params: out[%d] = %f", i, out[i]);

  // A graph copying device to device only is unaffected (runs on the GPU).
  cudaGraph_t dev_graph;
  CHECK(cudaGraphCreate(&dev_graph, 0));
  float* d2 = nullptr;
  CHECK(cudaMalloc(&d2, bytes));
  cudaGraphNode_t dd;
  CHECK(cudaGraphAddMemcpyNode1D(&dd, dev_graph, nullptr, 0, d2, d, bytes, cudaMemcpyDeviceToDevice));
  cudaGraphExec_t dev_exec;
  CHECK(cudaGraphInstantiate(&dev_exec, dev_graph, 0));
  CHECK(cudaGraphLaunch(dev_exec, stream));
  CHECK(cudaStreamSynchronize(stream));
  CHECK(cudaMemcpy(out.data(), d2, bytes, cudaMemcpyDeviceToHost));
  for (int i = 0; i < n; ++i) EXPECT(out[i] == float(i), "device graph: out[%d] = %f", i, out[i]);

  CHECK(cudaGraphExecDestroy(dev_exec));
  CHECK(cudaGraphDestroy(dev_graph));
  CHECK(cudaGraphExecDestroy(exec));
  CHECK(cudaGraphDestroy(graph));
  CHECK(cudaStreamDestroy(stream));
  CHECK(cudaFree(d));
  CHECK(cudaFree(d2));
  CHECK(cudaDeviceSynchronize());
  printf("graph_host_copies: OK\n");
  return 0;
}
