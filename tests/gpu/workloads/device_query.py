# compare: exact
"""torch.cuda.is_available, device_count, get_device_name/properties/capability,
mem_get_info, and the driver's own answers through ctypes on libcuda.so.1.
Timed: 200 torch.cuda.mem_get_info() calls (each a real driver query)."""
import ctypes

import _common

PROPS = [
    "name", "major", "minor", "total_memory", "multi_processor_count", "is_integrated",
    "is_multi_gpu_board", "max_threads_per_multi_processor", "max_threads_per_block",
    "warp_size", "regs_per_multiprocessor", "regs_per_block", "shared_memory_per_block",
    "shared_memory_per_block_optin", "shared_memory_per_multiprocessor", "L2_cache_size",
    "uuid", "pci_bus_id", "pci_device_id", "pci_domain_id", "clock_rate",
    "memory_clock_rate", "memory_bus_width",
]


def plain(v):
    return v if isinstance(v, (int, float, str, bool, type(None))) else str(v)


def main():
    torch = _common.setup()
    r = {"initialized_before": torch.cuda.is_initialized()}
    r["is_available"] = torch.cuda.is_available()
    r["device_count"] = n = torch.cuda.device_count()
    r["initialized_after_query"] = torch.cuda.is_initialized()
    r["torch_cuda"] = torch.version.cuda
    r["names"] = [torch.cuda.get_device_name(i) for i in range(n)]
    r["capability"] = [list(torch.cuda.get_device_capability(i)) for i in range(n)]
    r["props"] = [{k: plain(getattr(torch.cuda.get_device_properties(i), k, None)) for k in PROPS}
                  for i in range(n)]
    r["bf16_supported"] = torch.cuda.is_bf16_supported()
    r["current_device"] = torch.cuda.current_device()
    r["cudnn_available"] = torch.backends.cudnn.is_available()
    r["cudnn_version"] = torch.backends.cudnn.version()
    free, total = torch.cuda.mem_get_info()
    r["mem_total"] = total
    r["mem_free_le_total"] = 0 < free <= total
    r["_mem_free"] = free
    r["blas_handle_nonzero"] = torch.cuda.current_blas_handle() != 0

    # The driver API directly (the same library torch got).
    cu = ctypes.CDLL("libcuda.so.1")
    v = ctypes.c_int()
    r["cuDriverGetVersion"] = [cu.cuDriverGetVersion(ctypes.byref(v)), v.value]
    c = ctypes.c_int()
    r["cuDeviceGetCount"] = [cu.cuDeviceGetCount(ctypes.byref(c)), c.value]
    dev = ctypes.c_int()
    r["cuDeviceGet"] = [cu.cuDeviceGet(ctypes.byref(dev), 0), dev.value]
    name = ctypes.create_string_buffer(256)
    r["cuDeviceGetName"] = [cu.cuDeviceGetName(name, 256, dev), name.value.decode()]
    mem = ctypes.c_size_t()
    r["cuDeviceTotalMem"] = [cu.cuDeviceTotalMem_v2(ctypes.byref(mem), dev), mem.value]
    attrs = {}
    # MAX_THREADS_PER_BLOCK, WARP_SIZE, MULTIPROCESSOR_COUNT, CC major/minor, L2 size,
    # UNIFIED_ADDRESSING, MANAGED_MEMORY, PCI_BUS_ID, COMPUTE_MODE, CONCURRENT_KERNELS
    for a in (1, 10, 16, 75, 76, 38, 41, 83, 33, 20, 31):
        val = ctypes.c_int()
        attrs[str(a)] = [cu.cuDeviceGetAttribute(ctypes.byref(val), a, dev), val.value]
    r["cuDeviceGetAttribute"] = attrs

    for _ in range(10):
        torch.cuda.mem_get_info()
    with _common.Timer() as t:
        for _ in range(200):
            torch.cuda.mem_get_info()
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
