# compare: exact
# timeout: 300
"""A custom Triton kernel (JIT-compiled through the client libcuda that
TRITON_LIBCUDA_PATH names) runs correctly, then stores 4 TiB past its buffer:
an illegal address. The error surfaces at synchronize as the same Python
exception type as locally, stays sticky, and the process exits cleanly.
Timed: 100 launches of the correct kernel."""
import _common

import triton
import triton.language as tl


@triton.jit
def store_kernel(ptr, offset, n, BLOCK: tl.constexpr):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(ptr + offset + i, i.to(tl.float32) * 2.0, mask=i < n)


def main():
    torch = _common.setup()
    r = {"triton": triton.__version__.split("+")[0]}
    buf = torch.zeros(5000, device="cuda")
    grid = (triton.cdiv(4000, 256),)
    store_kernel[grid](buf, 0, 4000, BLOCK=256)
    torch.cuda.synchronize()
    r["good"] = _common.digest(buf)
    with _common.Timer() as t:
        for _ in range(100):
            store_kernel[grid](buf, 0, 4000, BLOCK=256)
    r["time_s"] = t.s
    try:
        store_kernel[grid](buf, 1 << 40, 4000, BLOCK=256)
        torch.cuda.synchronize()
        r["error"] = "no error"
    except Exception as e:
        r["error"] = _common.exc_name(e)
        r["error_is_runtime_error"] = isinstance(e, RuntimeError)
        r["error_mentions_illegal"] = "illegal" in str(e).lower()
    try:
        torch.ones(2, device="cuda").sum().item()
        r["sticky"] = "no error"
    except Exception as e:
        r["sticky"] = _common.exc_name(e)
    return r


if __name__ == "__main__":
    _common.run(main)
