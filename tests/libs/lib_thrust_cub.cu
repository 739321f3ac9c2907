// Thrust and CUB through rgpu (header libraries: their kernels are in this
// program's fatbin): sort, reduce, scan, transform, unique, sort_by_key and
// CUB's DeviceRadixSort and DeviceReduce with temporary storage queries.
#include <cub/cub.cuh>
#include <thrust/device_vector.h>
#include <thrust/functional.h>
#include <thrust/host_vector.h>
#include <thrust/reduce.h>
#include <thrust/scan.h>
#include <thrust/sequence.h>
#include <thrust/sort.h>
#include <thrust/transform.h>
#include <thrust/unique.h>

#include <cstdio>

#include "../programs/check.h"

struct Hash {
  __host__ __device__ unsigned operator()(unsigned x) const {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    return x % 100000;
  }
};

int main() {
  const int n = 1 << 20;
  thrust::device_vector<unsigned> v(n);
  thrust::sequence(v.begin(), v.end());
  thrust::transform(v.begin(), v.end(), v.begin(), Hash());
  thrust::device_vector<unsigned> keys = v;
  thrust::sort(v.begin(), v.end());
  bool sorted = thrust::is_sorted(v.begin(), v.end());
  unsigned long long sum =
      thrust::reduce(v.begin(), v.end(), 0ULL, thrust::plus<unsigned long long>());
  thrust::device_vector<unsigned long long> scan(n);
  thrust::inclusive_scan(v.begin(), v.end(), scan.begin());
  unsigned long long last = scan.back();
  auto end = thrust::unique(v.begin(), v.end());
  long distinct = end - v.begin();
  thrust::device_vector<int> vals(n);
  thrust::sequence(vals.begin(), vals.end());
  thrust::sort_by_key(keys.begin(), keys.end(), vals.begin());
  int first_val = vals[0];
  printf("thrust: sorted %d sum %llu scan-last %llu distinct %ld first value %d\n", sorted, sum, last,
         distinct, first_val);

  // CUB with explicit temporary storage.
  thrust::device_vector<unsigned> in(n), out(n);
  thrust::sequence(in.begin(), in.end());
  thrust::transform(in.begin(), in.end(), in.begin(), Hash());
  size_t temp_bytes = 0;
  CK_RT(cub::DeviceRadixSort::SortKeys(nullptr, temp_bytes, thrust::raw_pointer_cast(in.data()),
                                       thrust::raw_pointer_cast(out.data()), n));
  void* temp;
  CK_RT(cudaMalloc(&temp, temp_bytes));
  CK_RT(cub::DeviceRadixSort::SortKeys(temp, temp_bytes, thrust::raw_pointer_cast(in.data()),
                                       thrust::raw_pointer_cast(out.data()), n));
  CK_RT(cudaFree(temp));
  thrust::device_vector<unsigned> mx(1);
  temp_bytes = 0;
  CK_RT(cub::DeviceReduce::Max(nullptr, temp_bytes, thrust::raw_pointer_cast(in.data()),
                               thrust::raw_pointer_cast(mx.data()), n));
  CK_RT(cudaMalloc(&temp, temp_bytes));
  CK_RT(cub::DeviceReduce::Max(temp, temp_bytes, thrust::raw_pointer_cast(in.data()),
                               thrust::raw_pointer_cast(mx.data()), n));
  CK_RT(cudaFree(temp));
  CK_RT(cudaDeviceSynchronize());
  printf("cub: radix sort equals thrust sort %d, max %u\n",
         thrust::equal(out.begin(), out.end(), keys.begin()), static_cast<unsigned>(mx[0]));
  printf("thrust/cub ok\n");
  return 0;
}
