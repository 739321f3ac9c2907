# compare: exact
# env: CUDA_LAUNCH_BLOCKING=1
"""CUDA_LAUNCH_BLOCKING=1: every launch is synchronous, so a faulting kernel
(device-side assert from an out-of-range index) raises at the indexing op
itself, not at a later synchronize; ordinary work is unaffected.
Timed: 200 small kernels (each waits for completion)."""
import _common


def main():
    torch = _common.setup()
    r = {}
    a = torch.randn(128, 128, device="cuda", generator=torch.Generator(device="cuda").manual_seed(14))
    r["work"] = _common.digest(torch.relu(a @ a).cumsum(dim=0))
    s = torch.zeros(16, device="cuda")
    for _ in range(10):
        s += 1
    with _common.Timer() as t:
        for _ in range(200):
            s += 1
    r["s"] = float(s.sum().item())
    r["time_s"] = t.s

    x = torch.zeros(1, device="cuda")
    idx = torch.tensor([5], device="cuda")
    stage = "index"
    try:
        y = x[idx]
        stage = "sync"
        torch.cuda.synchronize()
        stage = "none"
        r["y"] = float(y.sum().item())
    except Exception as e:
        r["error"] = _common.exc_name(e)
        r["error_mentions_assert"] = "device-side assert" in str(e)
    r["raised_at"] = stage
    try:
        torch.cuda.synchronize()
        r["sticky_sync"] = "no error"
    except Exception as e:
        r["sticky_sync"] = _common.exc_name(e)
    return r


if __name__ == "__main__":
    _common.run(main)
