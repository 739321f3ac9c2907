"""Times calls that must reach the GPU, one at a time, through whatever
libcuda.so.1 / libnvidia-ml.so.1 the process loads (the native driver, or
rgpu's client under `rgpu run`): cuCtxSynchronize, cuMemGetInfo and
nvmlDeviceGetMemoryInfo. Prints p50/p90 in microseconds, one line each.
Diagnosis aid for the server's per-call cost (pair it with RGPU_STATS=1 on
the server): python3 scripts/query_latency_probe.py [CALLS]

Before the steady-state rows it prints cuMemGetInfo's latency by time since
cuInit (0-100 ms, 100-300 ms, 300-1000 ms, 1-2 s): through rgpu the first of
these overlap the server's start of the next warm worker for the card.
"""
import ctypes
import statistics
import sys
import time


def timed(fn, calls):
    for _ in range(20):
        fn()
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        rc = fn()
        samples.append(time.perf_counter() - t0)
        if rc != 0:
            raise SystemExit("call failed with %d" % rc)
    samples.sort()
    return samples[len(samples) // 2] * 1e6, samples[len(samples) * 9 // 10] * 1e6


def startup_windows(fn, t_init):
    """cuMemGetInfo latency (p50/max) by time since cuInit, over the first 2 s."""
    edges = [0.1, 0.3, 1.0, 2.0]
    windows = [[] for _ in edges]
    while True:
        t0 = time.perf_counter()
        if fn() != 0:
            raise SystemExit("cuMemGetInfo failed")
        t1 = time.perf_counter()
        since = t0 - t_init
        if since >= edges[-1]:
            break
        windows[next(i for i, e in enumerate(edges) if since < e)].append(t1 - t0)
    lo = 0.0
    for e, w in zip(edges, windows):
        if w:
            w.sort()
            print("cuMemGetInfo %4.0f-%4.0f ms after cuInit: p50 %8.1f us  max %8.1f us  (%d calls)"
                  % (lo * 1e3, e * 1e3, w[len(w) // 2] * 1e6, w[-1] * 1e6, len(w)))
        lo = e


def main():
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    cu = ctypes.CDLL("libcuda.so.1")
    dev, ctx = ctypes.c_int(), ctypes.c_void_p()
    t_init = time.perf_counter()
    assert cu.cuInit(0) == 0
    assert cu.cuDeviceGet(ctypes.byref(dev), 0) == 0
    assert cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev) == 0
    assert cu.cuCtxSetCurrent(ctx) == 0
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    startup_windows(lambda: cu.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)), t_init)
    rows = [("cuCtxSynchronize", lambda: cu.cuCtxSynchronize()),
            ("cuMemGetInfo", lambda: cu.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total)))]
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
        handle = ctypes.c_void_p()
        mem = (ctypes.c_ulonglong * 3)()
        if nvml.nvmlInit_v2() == 0 and nvml.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(handle)) == 0:
            rows.append(("nvmlDeviceGetMemoryInfo", lambda: nvml.nvmlDeviceGetMemoryInfo(handle, mem)))
    except OSError as e:
        print("no NVML: %s" % e)
    for name, fn in rows:
        p50, p90 = timed(fn, calls)
        print("%-24s p50 %8.1f us  p90 %8.1f us  (%d calls)" % (name, p50, p90, calls))


if __name__ == "__main__":
    main()
