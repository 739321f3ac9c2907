# compare: exact
# require-rgpu: libnvidia-ml
"""NVML as pynvml and torch use it, through ctypes on libnvidia-ml.so.1 (no
torch): nvmlInit_v2, DeviceGetCount_v2, GetHandleByIndex_v2 / ByUUID /
ByPciBusId_v2, GetName, GetUUID, GetIndex, GetMemoryInfo, GetPciInfo_v3,
GetCudaComputeCapability, SystemGetDriverVersion / CudaDriverVersion_v2,
ErrorString, Shutdown. Timed: 200 nvmlDeviceGetMemoryInfo calls."""
import ctypes

import _common


class Memory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong),
                ("used", ctypes.c_ulonglong)]


class PciInfo(ctypes.Structure):  # nvmlPciInfo_t (+ slack)
    _fields_ = [("busIdLegacy", ctypes.c_char * 16), ("domain", ctypes.c_uint),
                ("bus", ctypes.c_uint), ("device", ctypes.c_uint),
                ("pciDeviceId", ctypes.c_uint), ("pciSubSystemId", ctypes.c_uint),
                ("busId", ctypes.c_char * 32), ("_slack", ctypes.c_char * 64)]


class Utilization(ctypes.Structure):
    _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]


def main():
    import time

    nv = ctypes.CDLL("libnvidia-ml.so.1")
    nv.nvmlErrorString.restype = ctypes.c_char_p
    r = {"init": nv.nvmlInit_v2()}
    r["error_string_0"] = nv.nvmlErrorString(0).decode()
    r["error_string_2"] = nv.nvmlErrorString(2).decode()
    buf = ctypes.create_string_buffer(96)
    r["driver_version"] = [nv.nvmlSystemGetDriverVersion(buf, 96), buf.value.decode()]
    r["nvml_version"] = [nv.nvmlSystemGetNVMLVersion(buf, 96), buf.value.decode()]
    cv = ctypes.c_int()
    r["cuda_driver_version"] = [nv.nvmlSystemGetCudaDriverVersion_v2(ctypes.byref(cv)), cv.value]
    count = ctypes.c_uint()
    r["count"] = [nv.nvmlDeviceGetCount_v2(ctypes.byref(count)), count.value]
    devices = []
    handle = None
    for i in range(count.value):
        d = {}
        h = ctypes.c_void_p()
        d["handle_rc"] = nv.nvmlDeviceGetHandleByIndex_v2(i, ctypes.byref(h))
        handle = handle or h
        name = ctypes.create_string_buffer(96)
        d["name"] = [nv.nvmlDeviceGetName(h, name, 96), name.value.decode()]
        uuid = ctypes.create_string_buffer(96)
        d["uuid"] = [nv.nvmlDeviceGetUUID(h, uuid, 96), uuid.value.decode()]
        idx = ctypes.c_uint()
        d["index"] = [nv.nvmlDeviceGetIndex(h, ctypes.byref(idx)), idx.value]
        mem = Memory()
        d["memory_rc"] = nv.nvmlDeviceGetMemoryInfo(h, ctypes.byref(mem))
        d["memory_total"] = mem.total
        d["memory_consistent"] = mem.used + mem.free <= mem.total and mem.free > 0
        d["_memory"] = [mem.total, mem.free, mem.used]
        pci = PciInfo()
        d["pci_rc"] = nv.nvmlDeviceGetPciInfo_v3(h, ctypes.byref(pci))
        d["pci"] = [pci.busId.decode(), pci.domain, pci.bus, pci.device, pci.pciDeviceId]
        by_uuid = ctypes.c_void_p()
        d["by_uuid"] = [nv.nvmlDeviceGetHandleByUUID(uuid, ctypes.byref(by_uuid)),
                        by_uuid.value == h.value]
        by_pci = ctypes.c_void_p()
        d["by_pci"] = [nv.nvmlDeviceGetHandleByPciBusId_v2(pci.busId, ctypes.byref(by_pci)),
                       by_pci.value == h.value]
        major, minor = ctypes.c_int(), ctypes.c_int()
        d["cc"] = [nv.nvmlDeviceGetCudaComputeCapability(h, ctypes.byref(major),
                                                         ctypes.byref(minor)),
                   major.value, minor.value]
        util = Utilization()
        d["utilization_rc"] = nv.nvmlDeviceGetUtilizationRates(h, ctypes.byref(util))
        d["_utilization"] = [util.gpu, util.memory]
        devices.append(d)
    r["devices"] = devices
    bad = ctypes.c_void_p()
    r["bad_index_rc"] = nv.nvmlDeviceGetHandleByIndex_v2(count.value + 7, ctypes.byref(bad))

    t0 = time.perf_counter()
    mem = Memory()
    for _ in range(200 if handle else 0):
        nv.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(mem))
    r["time_s"] = time.perf_counter() - t0
    r["shutdown"] = nv.nvmlShutdown()
    r["after_shutdown_count_rc"] = nv.nvmlDeviceGetCount_v2(ctypes.byref(count))
    return r


if __name__ == "__main__":
    _common.run(main)
