# compare: exact
"""CuPy (no torch): elementwise and reduction kernels (NVRTC-compiled at run
time), a RawKernel and a RawModule, cuBLAS (matmul), cuFFT (fft/rfft2),
cuRAND (cupy.random with a seed), cuSOLVER (solve, eigh, cholesky), cuSPARSE
(CSR matrix times vector), sort and cumsum (CUB), streams and events.
Timed: 20 float32 4096^2 matmuls."""
import hashlib

import _common


def digest(cp, a):
    h = cp.asnumpy(a)
    return {"sum": float(h.astype("float64").sum()), "shape": list(h.shape), "dtype": str(h.dtype),
            "sha": hashlib.sha256(h.tobytes()).hexdigest()[:16]}


def main():
    import cupy as cp
    import cupyx.scipy.sparse as sparse

    r = {}
    x = cp.arange(1 << 20, dtype=cp.float32) / 1000
    r["sum"] = float(x.sum())
    r["elementwise"] = digest(cp, cp.sin(x) * cp.exp(-x / 100) + 1)
    sq = cp.ElementwiseKernel("float32 a", "float32 b", "b = a * a + 1", "rgpu_sq")
    r["elementwise_kernel"] = digest(cp, sq(x))
    # As in CuPy's documentation: the reduction combines a and b, the post-map reads a.
    l2 = cp.ReductionKernel("float32 x", "float32 y", "x * x", "a + b", "y = sqrt(a)", "0", "rgpu_l2")
    r["reduction_kernel"] = float(l2(x[:4096]))
    raw = cp.RawKernel(r'''
extern "C" __global__ void scale(const float* a, float* b, float s, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) b[i] = a[i] * s;
}''', "scale")
    y = cp.empty_like(x)
    raw(((x.size + 255) // 256,), (256,), (x, y, cp.float32(3.0), cp.int32(x.size)))
    r["raw_kernel"] = digest(cp, y)
    mod = cp.RawModule(code=r'''
template <typename T> __global__ void twice(T* a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) a[i] = a[i] * 2;
}''', options=("-std=c++17",), name_expressions=("twice<float>", "twice<int>"))
    xi = cp.arange(1000, dtype=cp.int32)
    mod.get_function("twice<int>")((4,), (256,), (xi, cp.int32(1000)))
    r["raw_module"] = int(xi.sum())

    g = cp.random.default_rng(7)
    a = g.standard_normal((512, 512), dtype=cp.float32)
    b = g.standard_normal((512, 256), dtype=cp.float32)
    r["random"] = digest(cp, a)
    cp.random.seed(3)
    r["legacy_random"] = digest(cp, cp.random.rand(1000))
    r["matmul"] = digest(cp, a @ b)
    r["fft"] = digest(cp, cp.fft.fft(x[:65536].astype(cp.complex64)))
    r["rfft2"] = digest(cp, cp.fft.rfft2(a))
    spd = (a @ a.T).astype(cp.float64) + 512 * cp.eye(512)
    rhs = cp.ones(512)
    sol = cp.linalg.solve(spd, rhs)
    r["solve_residual_small"] = bool(float(cp.abs(spd @ sol - rhs).max()) < 1e-8)
    r["solve"] = digest(cp, sol)
    r["eigh"] = digest(cp, cp.linalg.eigh(spd)[0])
    r["cholesky"] = digest(cp, cp.linalg.cholesky(spd))
    dense = cp.where(cp.abs(a) > 1.5, a, 0).astype(cp.float32)
    csr = sparse.csr_matrix(dense)
    r["nnz"] = int(csr.nnz)
    r["spmv"] = digest(cp, csr @ cp.ones(512, dtype=cp.float32))
    r["sort"] = digest(cp, cp.sort(a.ravel()))
    r["cumsum"] = digest(cp, cp.cumsum(x[:100000]))
    r["argmax"] = int(cp.argmax(a))

    s = cp.cuda.Stream(non_blocking=True)
    with s:
        z = cp.ones(1 << 20, dtype=cp.float32) * 2
        e = cp.cuda.Event()
        e.record(s)
    e.synchronize()
    r["stream"] = float(z.sum())

    big = g.standard_normal((4096, 4096), dtype=cp.float32)
    for _ in range(3):
        out = big @ big
    cp.cuda.Device().synchronize()
    with _common.Timer(sync=False) as t:
        for _ in range(20):
            out = big @ big
        cp.cuda.Device().synchronize()
    r["big"] = digest(cp, out)
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
