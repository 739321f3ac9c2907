"""Helpers shared by the GPU workloads (tests/gpu/workloads/*.py).

A workload is a plain script: it defines main() -> dict and ends with

    if __name__ == "__main__":
        _common.run(main)

run() prints exactly one final line `RESULT <json>` (the dict, plus `time_s`
and `_libs`, the driver libraries mapped into the process) and exits 0; when
main() raises, it prints the traceback and exits 1 without a RESULT line.

Key conventions the runner (tests/gpu/run_suite.py) relies on:
  time_s     seconds of the timed, steady-state part (never compared)
  _name      keys starting with "_" are informational (shown, never compared)
  sha...     keys starting with "sha" are ignored under `# compare: rtol=...`
Only the standard library and torch are used here; torch is imported lazily
so that workloads without torch (nvml_ctypes) can use run() too.
"""
import hashlib
import json
import os
import sys
import time
import traceback

# cuBLAS needs this before its first handle for deterministic results.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def setup(seed=0, deterministic=True):
    """Seeds everything and asks for deterministic kernels; returns torch."""
    import random

    import torch

    random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    if deterministic:
        # warn_only: ops without a deterministic kernel warn instead of raising.
        torch.use_deterministic_algorithms(True, warn_only=True)
    return torch


def exc_name(e):
    """The exception's class name, e.g. AcceleratorError."""
    return type(e).__name__


def tensor_bytes(t):
    import torch

    t = t.detach().contiguous().cpu().reshape(-1)
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    b = t.view(torch.uint8)
    try:
        return b.numpy().tobytes()
    except Exception:  # no numpy
        return bytes(b.tolist())


def digest(t):
    """float64 sum and abs-sum, shape, dtype and a sha256 prefix of the bytes."""
    import torch

    t = t.detach()
    x = t.cpu()
    if x.is_floating_point() and x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    x = x.to(torch.float64)
    return {
        "sum": float(x.sum()),
        "asum": float(x.abs().sum()),
        "shape": list(t.shape),
        "dtype": str(t.dtype).replace("torch.", ""),
        "sha": hashlib.sha256(tensor_bytes(t)).hexdigest()[:16],
    }


def params_digest(module):
    """One digest over all parameters of a module (sum, asum, sha)."""
    import torch

    flat = torch.cat([p.detach().float().reshape(-1).cpu() for p in module.parameters()])
    return digest(flat)


class Timer:
    """`with Timer() as t: ...` then t.s: seconds, with CUDA syncs around it."""

    def __init__(self, sync=True):
        self.sync = sync
        self.s = 0.0

    def _sync(self):
        if self.sync:
            import torch

            torch.cuda.synchronize()

    def __enter__(self):
        self._sync()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self._sync()
        self.s = time.perf_counter() - self.t0
        return False


def mapped_libs():
    """Real paths of the libcuda / libnvidia-ml files mapped into this process."""
    libs = {"libcuda": set(), "libnvidia-ml": set()}
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) < 6:
                    continue
                path = parts[5].strip()
                base = os.path.basename(path)
                for key in libs:
                    if base.startswith(key + ".so"):
                        libs[key].add(os.path.realpath(path))
    except OSError:
        pass
    return {k: sorted(v) for k, v in libs.items()}


def emit(result):
    result = dict(result)
    result.setdefault("time_s", 0.0)
    result["_libs"] = mapped_libs()
    sys.stderr.flush()
    print("RESULT " + json.dumps(result, sort_keys=True, default=str), flush=True)


def run(main):
    try:
        result = main()
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        sys.stdout.flush()
        sys.exit(1)
    emit(result)
