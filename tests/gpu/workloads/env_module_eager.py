# compare: exact
# env: CUDA_MODULE_LOADING=EAGER
# timeout: 300
"""CUDA_MODULE_LOADING=EAGER: the driver reports the mode
(cuModuleGetLoadingMode: 1 = EAGER, 2 = LAZY) and a spread of kernels from
different libtorch modules (GEMM, conv, softmax, sort, scan, topk, index,
RNG) give the same results. Timed: the first run of those ops (cold
kernels: with LAZY this includes loading each kernel's module)."""
import ctypes

import _common


def ops(torch, g):
    F = torch.nn.functional
    a = torch.randn(256, 256, device="cuda", generator=g)
    img = torch.randn(2, 3, 16, 16, device="cuda", generator=g)
    w = torch.randn(4, 3, 3, 3, device="cuda", generator=g)
    return {
        "mm": _common.digest(a @ a),
        "conv": _common.digest(F.conv2d(img, w)),
        "softmax": _common.digest(torch.softmax(a, dim=1)),
        "sort": _common.digest(torch.sort(a[0])[0]),
        "cumsum": _common.digest(torch.cumsum(a, dim=1)),
        "topk": _common.digest(torch.topk(a, 5, dim=1)[0]),
        "index": _common.digest(a[torch.tensor([3, 1, 200], device="cuda")]),
        "rand": _common.digest(torch.rand(1000, device="cuda", generator=g)),
    }


def main():
    torch = _common.setup()
    g = torch.Generator(device="cuda").manual_seed(13)
    torch.cuda.init()
    with _common.Timer() as t:
        r = ops(torch, g)
    cu = ctypes.CDLL("libcuda.so.1")
    mode = ctypes.c_int(-1)
    r["cuModuleGetLoadingMode"] = [cu.cuModuleGetLoadingMode(ctypes.byref(mode)), mode.value]
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
