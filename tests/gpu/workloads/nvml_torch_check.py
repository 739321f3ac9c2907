# compare: exact
# env: PYTORCH_NVML_BASED_CUDA_CHECK=1
# require-rgpu: libcuda libnvidia-ml
"""PYTORCH_NVML_BASED_CUDA_CHECK=1: torch.cuda.is_available()/device_count()
answered through NVML (ctypes on libnvidia-ml.so.1) without initialising
CUDA; torch's NVML helpers (count, UUIDs) and the pynvml-based ones
(utilization, memory) where pynvml is installed; then real CUDA work.
Timed: 100 torch.cuda._raw_device_count_nvml() calls."""
import _common


def main():
    torch = _common.setup()
    r = {"is_available": torch.cuda.is_available()}
    r["initialized_after_is_available"] = torch.cuda.is_initialized()
    r["device_count"] = torch.cuda.device_count()
    r["initialized_after_count"] = torch.cuda.is_initialized()
    for name in ("_device_count_nvml", "_raw_device_count_nvml", "_raw_device_uuid_nvml"):
        f = getattr(torch.cuda, name, None)
        try:
            r[name] = f() if f else "absent"
        except Exception as e:
            r[name] = _common.exc_name(e)
    # pynvml-based helpers: only the type of the answer (values vary).
    for name in ("utilization", "memory_usage", "device_memory_used"):
        f = getattr(torch.cuda, name, None)
        try:
            r["pynvml_" + name] = type(f()).__name__ if f else "absent"
        except Exception as e:
            r["pynvml_" + name] = _common.exc_name(e)
    x = torch.arange(1000, device="cuda", dtype=torch.float32)
    r["work"] = float((x * 2).sum().item())
    r["initialized_after_work"] = torch.cuda.is_initialized()
    f = getattr(torch.cuda, "_raw_device_count_nvml", None)
    with _common.Timer(sync=False) as t:
        for _ in range(100 if f else 0):
            f()
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
