# compare: exact
# env: CUDA_VISIBLE_DEVICES=
"""CUDA_VISIBLE_DEVICES set and empty: no device. torch.cuda.is_available()
is False, device_count() is 0, using "cuda" raises; the driver's cuInit
returns CUDA_ERROR_NO_DEVICE (100) and cuDeviceGetCount gives 0."""
import ctypes

import _common


def main():
    torch = _common.setup()
    r = {"is_available": torch.cuda.is_available(), "device_count": torch.cuda.device_count()}
    try:
        torch.zeros(1, device="cuda")
        r["use_cuda"] = "no error"
    except Exception as e:
        r["use_cuda"] = _common.exc_name(e)
    r["initialized"] = torch.cuda.is_initialized()
    cu = ctypes.CDLL("libcuda.so.1")
    r["cuInit"] = cu.cuInit(0)
    n = ctypes.c_int(-1)
    r["cuDeviceGetCount"] = [cu.cuDeviceGetCount(ctypes.byref(n)), n.value]
    d = ctypes.c_int(-1)
    r["cuDeviceGet0"] = cu.cuDeviceGet(ctypes.byref(d), 0)
    return r


if __name__ == "__main__":
    _common.run(main)
