# compare: exact
"""Through a real rgpu-server --backend sim (selftest --rgpu-build only): the
driver API via ctypes on libcuda.so.1, and _common's RESULT line and library
report (the remote run must map rgpu's libcuda)."""
import ctypes
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "workloads"))
import _common  # noqa: E402


def main():
    cu = ctypes.CDLL("libcuda.so.1")
    r = {"cuInit": cu.cuInit(0)}
    n = ctypes.c_int(-1)
    r["count"] = [cu.cuDeviceGetCount(ctypes.byref(n)), n.value]
    name = ctypes.create_string_buffer(256)
    r["name"] = [cu.cuDeviceGetName(name, 256, 0), name.value.decode()]
    return r


if __name__ == "__main__":
    _common.run(main)
