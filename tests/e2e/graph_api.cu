// A CUDA graph built node by node (the explicit graph API, as CUDA samples
// simpleCudaGraphs and jacobiCudaGraphs use it): memset, kernel, memcpy,
// child graph, host, empty and event record/wait nodes with dependencies,
// topology queries, instantiation, repeated launches, kernel parameter
// updates in the executable graph (cudaGraphExecKernelNodeSetParams,
// cudaGraphExecUpdate from a clone, cudaGraphNodeSetEnabled), node removal.
#define E2E_PROGRAM "graph_api"
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "runtime_check.h"

// Same kernels as vector_add.cu and streams_events.cu (the sim runs them by
// mangled name: backend/sim/test_kernels.cc).
__global__ void vectorAdd(const float* a, const float* b, float* c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

__global__ void scaleInPlace(float* x, float s, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= s;
}

__global__ void addDelta(int* p, int n, int delta) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] += delta;
}

static int g_host_calls = 0;

// Topology checks are SOFT_EXPECTs: the launches below do not depend on them.
static void CUDART_CB CountCall(void* arg) { ++*static_cast<int*>(arg); }

cudaKernelNodeParams KernelParams(void* func, int n, void** args) {
  cudaKernelNodeParams p = {};
  p.func = func;
  p.gridDim = dim3((n + 255) / 256);
  p.blockDim = dim3(256);
  p.kernelParams = args;
  return p;
}

void CheckOutputs(const float* d, const int* p, int n, float scale, int delta, const char* what) {
  std::vector<float> out(n);
  std::vector<int> ints(n);
  CHECK(cudaMemcpy(out.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(ints.data(), p, n * sizeof(int), cudaMemcpyDeviceToHost));
  for (int i = 0; i < n; ++i) {
    float want = scale * (float(i) + 2.0f * float(i));
    EXPECT(out[i] == want, "%s: d[%d] = %f, want %f", what, i, out[i], want);
    EXPECT(ints[i] == delta, "%s: p[%d] = %d, want %d", what, i, ints[i], delta);
  }
}

int main() {
  const int n = 1000;
  const size_t bytes = n * sizeof(float);
  float *a, *b, *c, *d;
  int* p;
  CHECK(cudaMalloc(&a, bytes));
  CHECK(cudaMalloc(&b, bytes));
  CHECK(cudaMalloc(&c, bytes));
  CHECK(cudaMalloc(&d, bytes));
  CHECK(cudaMalloc(&p, n * sizeof(int)));
  std::vector<float> ha(n), hb(n);
  for (int i = 0; i < n; ++i) {
    ha[i] = float(i);
    hb[i] = 2.0f * float(i);
  }
  CHECK(cudaMemcpy(a, ha.data(), bytes, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(b, hb.data(), bytes, cudaMemcpyHostToDevice));
  CHECK(cudaMemset(p, 0x7f, n * sizeof(int)));

  // Child graph: p[i] += 5.
  cudaGraph_t child;
  CHECK(cudaGraphCreate(&child, 0));
  int n_arg = n, delta = 5;
  void* delta_args[] = {&p, &n_arg, &delta};
  cudaKernelNodeParams kd = KernelParams(reinterpret_cast<void*>(addDelta), n, delta_args);
  cudaGraphNode_t child_kernel;
  CHECK(cudaGraphAddKernelNode(&child_kernel, child, nullptr, 0, &kd));

  cudaGraph_t graph;
  CHECK(cudaGraphCreate(&graph, 0));
  // memset p = 0, then the child adds 5.
  cudaMemsetParams ms = {};
  ms.dst = p;
  ms.value = 0;
  ms.elementSize = sizeof(int);
  ms.width = n;
  ms.height = 1;
  cudaGraphNode_t memset_node, child_node;
  CHECK(cudaGraphAddMemsetNode(&memset_node, graph, nullptr, 0, &ms));
  CHECK(cudaGraphAddChildGraphNode(&child_node, graph, &memset_node, 1, child));
  CHECK(cudaGraphDestroy(child));  // the node holds its own copy

  // c = a + b; c *= 2 (edge added afterwards); d = c.
  void* add_args[] = {&a, &b, &c, &n_arg};
  float scale = 2.0f;
  void* scale_args[] = {&c, &scale, &n_arg};
  cudaKernelNodeParams ka = KernelParams(reinterpret_cast<void*>(vectorAdd), n, add_args);
  cudaKernelNodeParams ks = KernelParams(reinterpret_cast<void*>(scaleInPlace), n, scale_args);
  cudaGraphNode_t add_node, scale_node, copy_node, host_node, join_node, record_node;
  CHECK(cudaGraphAddKernelNode(&add_node, graph, nullptr, 0, &ka));
  CHECK(cudaGraphAddKernelNode(&scale_node, graph, nullptr, 0, &ks));
  CHECK(cudaGraphAddDependencies(graph, &add_node, &scale_node, nullptr, 1));
  EXPECT(cudaGraphAddDependencies(graph, &add_node, &scale_node, nullptr, 1) == cudaErrorInvalidValue,
         "a duplicate edge is refused");
  CHECK(cudaGraphAddMemcpyNode1D(&copy_node, graph, &scale_node, 1, d, c, bytes, cudaMemcpyDeviceToDevice));
  cudaGraphNode_t before_host[] = {copy_node, child_node};
  cudaHostNodeParams hp = {CountCall, &g_host_calls};
  CHECK(cudaGraphAddHostNode(&host_node, graph, before_host, 2, &hp));
  CHECK(cudaGraphAddEmptyNode(&join_node, graph, &host_node, 1));
  cudaEvent_t done;
  CHECK(cudaEventCreate(&done));
  CHECK(cudaGraphAddEventRecordNode(&record_node, graph, &join_node, 1, done));

  // Topology as built. CUDA documents no order for the nodes, roots or
  // edges it lists: each list is compared as a set, by node names (no
  // handle is printed, so a run on a GPU and one through rgpu print alike).
  const std::pair<cudaGraphNode_t, const char*> names[] = {
      {memset_node, "fill"}, {child_node, "child"}, {add_node, "add"},   {scale_node, "scale"},
      {copy_node, "copy"},   {host_node, "host"},   {join_node, "join"}, {record_node, "record"}};
  auto name = [&](cudaGraphNode_t node) -> std::string {
    for (const auto& [n, s] : names)
      if (n == node) return s;
    return "unknown";
  };
  auto sorted_names = [&](const std::vector<cudaGraphNode_t>& list) {
    std::vector<std::string> out;
    for (cudaGraphNode_t node : list) out.push_back(name(node));
    std::sort(out.begin(), out.end());
    return out;
  };
  auto joined = [](const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& x : v) s += (s.empty() ? "" : " ") + x;
    return s;
  };
  size_t count = 0;
  CHECK(cudaGraphGetNodes(graph, nullptr, &count));
  SOFT_EXPECT(count == 8, "graph has %zu nodes, want 8", count);
  std::vector<cudaGraphNode_t> nodes(count);
  CHECK(cudaGraphGetNodes(graph, nodes.data(), &count));
  std::string listed = joined(sorted_names(nodes));
  printf("graph_api: nodes: %s\n", listed.c_str());
  SOFT_EXPECT(listed == "add child copy fill host join record scale", "nodes: %s", listed.c_str());
  CHECK(cudaGraphGetRootNodes(graph, nullptr, &count));
  SOFT_EXPECT(count == 2, "%zu root nodes, want 2 (memset, vectorAdd)", count);
  std::vector<cudaGraphNode_t> roots(count);
  CHECK(cudaGraphGetRootNodes(graph, roots.data(), &count));
  listed = joined(sorted_names(roots));
  printf("graph_api: roots: %s\n", listed.c_str());
  SOFT_EXPECT(listed == "add fill", "roots: %s", listed.c_str());
  CHECK(cudaGraphGetEdges(graph, nullptr, nullptr, nullptr, &count));
  SOFT_EXPECT(count == 7, "%zu edges, want 7", count);
  std::vector<cudaGraphNode_t> from(count), to(count);
  CHECK(cudaGraphGetEdges(graph, from.data(), to.data(), nullptr, &count));
  SOFT_EXPECT(count == 7, "%zu edges filled in, want 7", count);
  std::vector<std::string> edges;
  for (size_t i = 0; i < std::min(count, from.size()); ++i) edges.push_back(name(from[i]) + "->" + name(to[i]));
  std::sort(edges.begin(), edges.end());
  listed = joined(edges);
  printf("graph_api: edges: %s\n", listed.c_str());
  std::vector<std::string> want = {"add->scale", "child->host", "copy->host", "fill->child",
                                   "host->join", "join->record", "scale->copy"};
  std::sort(want.begin(), want.end());
  SOFT_EXPECT(edges == want, "edges: %s, want %s", listed.c_str(), joined(want).c_str());
  CHECK(cudaGraphNodeGetDependencies(host_node, nullptr, nullptr, &count));
  EXPECT(count == 2, "host node has %zu dependencies, want 2", count);
  CHECK(cudaGraphNodeGetDependentNodes(add_node, nullptr, nullptr, &count));
  EXPECT(count == 1, "vectorAdd has %zu dependents, want 1", count);
  cudaGraphNodeType type;
  CHECK(cudaGraphNodeGetType(child_node, &type));
  EXPECT(type == cudaGraphNodeTypeGraph, "child node type %d", int(type));
  CHECK(cudaGraphNodeGetType(copy_node, &type));
  EXPECT(type == cudaGraphNodeTypeMemcpy, "memcpy node type %d", int(type));
  cudaKernelNodeParams got = {};
  CHECK(cudaGraphKernelNodeGetParams(scale_node, &got));
  EXPECT(got.gridDim.x == 4 && got.blockDim.x == 256 && *static_cast<float*>(got.kernelParams[1]) == 2.0f,
         "kernel node parameters read back");

  // Instantiate, launch three times.
  cudaGraphExec_t exec;
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  cudaStream_t stream;
  CHECK(cudaStreamCreate(&stream));
  for (int i = 0; i < 3; ++i) CHECK(cudaGraphLaunch(exec, stream));
  CHECK(cudaStreamSynchronize(stream));
  CheckOutputs(d, p, n, 2.0f, 5, "three launches");
  EXPECT(g_host_calls == 3, "host node ran %d times, want 3", g_host_calls);
  CHECK(cudaEventQuery(done));

  // A new scale in the executable graph only.
  float scale3 = 3.0f;
  void* scale3_args[] = {&c, &scale3, &n_arg};
  cudaKernelNodeParams ks3 = KernelParams(reinterpret_cast<void*>(scaleInPlace), n, scale3_args);
  CHECK(cudaGraphExecKernelNodeSetParams(exec, scale_node, &ks3));
  CHECK(cudaGraphLaunch(exec, stream));
  CHECK(cudaStreamSynchronize(stream));
  CheckOutputs(d, p, n, 3.0f, 5, "after cudaGraphExecKernelNodeSetParams");
  EXPECT(g_host_calls == 4, "host node ran %d times, want 4", g_host_calls);
  CHECK(cudaGraphKernelNodeGetParams(scale_node, &got));
  EXPECT(*static_cast<float*>(got.kernelParams[1]) == 2.0f, "the graph's own node keeps scale 2");

  // Whole-graph update from a clone whose scale is 4.
  cudaGraph_t clone;
  CHECK(cudaGraphClone(&clone, graph));
  cudaGraphNode_t cloned_scale;
  CHECK(cudaGraphNodeFindInClone(&cloned_scale, scale_node, clone));
  float scale4 = 4.0f;
  void* scale4_args[] = {&c, &scale4, &n_arg};
  cudaKernelNodeParams ks4 = KernelParams(reinterpret_cast<void*>(scaleInPlace), n, scale4_args);
  CHECK(cudaGraphKernelNodeSetParams(cloned_scale, &ks4));
  cudaGraphExecUpdateResultInfo info = {};
  CHECK(cudaGraphExecUpdate(exec, clone, &info));
  EXPECT(info.result == cudaGraphExecUpdateSuccess, "update result %d", int(info.result));
  CHECK(cudaGraphLaunch(exec, stream));
  CHECK(cudaStreamSynchronize(stream));
  CheckOutputs(d, p, n, 4.0f, 5, "after cudaGraphExecUpdate");

  // Disabling the scale node: d = a + b until it is enabled again.
  CHECK(cudaGraphNodeSetEnabled(exec, scale_node, 0));
  unsigned int enabled = 1;
  CHECK(cudaGraphNodeGetEnabled(exec, scale_node, &enabled));
  EXPECT(enabled == 0, "scale node reads back disabled");
  CHECK(cudaGraphLaunch(exec, stream));
  CHECK(cudaStreamSynchronize(stream));
  CheckOutputs(d, p, n, 1.0f, 5, "with the scale node disabled");
  CHECK(cudaGraphNodeSetEnabled(exec, scale_node, 1));
  CHECK(cudaGraphLaunch(exec, stream));
  CHECK(cudaStreamSynchronize(stream));
  CheckOutputs(d, p, n, 4.0f, 5, "with the scale node enabled again");
  EXPECT(cudaGraphNodeSetEnabled(exec, host_node, 0) == cudaErrorInvalidValue, "host nodes cannot be disabled");

  // A clone with a node removed no longer matches the executable graph.
  CHECK(cudaGraphDestroyNode(cloned_scale));
  CHECK(cudaGraphGetNodes(clone, nullptr, &count));
  EXPECT(count == 7, "clone has %zu nodes after removal, want 7", count);
  EXPECT(cudaGraphExecUpdate(exec, clone, &info) == cudaErrorGraphExecUpdateFailure,
         "update with another topology fails");
  EXPECT(info.result == cudaGraphExecUpdateErrorTopologyChanged, "update result %d", int(info.result));

  // The same graph instantiated again runs with its own parameters (scale 2).
  cudaGraphExec_t exec2;
  CHECK(cudaGraphInstantiate(&exec2, graph, 0));
  CHECK(cudaGraphLaunch(exec2, stream));
  CHECK(cudaStreamSynchronize(stream));
  CheckOutputs(d, p, n, 2.0f, 5, "second instantiation");

  // A second graph: waits on the event the first one records, then a memset
  // given through the generic cudaGraphAddNode.
  cudaGraph_t g2;
  CHECK(cudaGraphCreate(&g2, 0));
  cudaGraphNode_t wait_node, generic_memset;
  CHECK(cudaGraphAddEventWaitNode(&wait_node, g2, nullptr, 0, done));
  cudaGraphNodeParams np = {};
  np.type = cudaGraphNodeTypeMemset;
  np.memset.dst = p;
  np.memset.value = 9;
  np.memset.elementSize = sizeof(int);
  np.memset.width = n;
  np.memset.height = 1;
  CHECK(cudaGraphAddNode(&generic_memset, g2, &wait_node, nullptr, 1, &np));
  cudaGraphExec_t exec3;
  CHECK(cudaGraphInstantiate(&exec3, g2, 0));
  CHECK(cudaGraphLaunch(exec3, stream));
  CHECK(cudaStreamSynchronize(stream));
  std::vector<int> nines(n);
  CHECK(cudaMemcpy(nines.data(), p, n * sizeof(int), cudaMemcpyDeviceToHost));
  for (int i = 0; i < n; ++i) EXPECT(nines[i] == 9, "p[%d] = %d after the generic memset node", i, nines[i]);
  CHECK(cudaGraphExecDestroy(exec3));
  CHECK(cudaGraphDestroy(g2));

  CHECK(cudaGraphExecDestroy(exec2));
  CHECK(cudaGraphExecDestroy(exec));
  CHECK(cudaGraphDestroy(clone));
  CHECK(cudaGraphDestroy(graph));
  CHECK(cudaEventDestroy(done));
  CHECK(cudaStreamDestroy(stream));
  CHECK(cudaFree(a));
  CHECK(cudaFree(b));
  CHECK(cudaFree(c));
  CHECK(cudaFree(d));
  CHECK(cudaFree(p));
  if (g_failures != 0) {
    printf("graph_api: %d checks failed\n", g_failures);
    return 1;
  }
  printf("graph_api: OK (%d host node calls)\n", g_host_calls);
  return 0;
}
