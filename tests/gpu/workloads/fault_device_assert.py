# compare: exact
"""A device-side assert: torch.zeros(1, device='cuda')[torch.tensor([5],
device='cuda')]. The error surfaces (by the next synchronize at the latest)
as the same Python exception type as locally, stays sticky, and the process
still prints its result and exits cleanly (the runner compares exit codes)."""
import _common


def main():
    torch = _common.setup()
    r = {}
    ok = torch.arange(10, device="cuda", dtype=torch.float32)
    r["before"] = float(ok.sum().item())
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
        r["error_is_runtime_error"] = isinstance(e, RuntimeError)
        r["error_mentions_assert"] = "device-side assert" in str(e)
    r["raised"] = stage != "none"
    r["_raised_at"] = stage  # racy without CUDA_LAUNCH_BLOCKING: not compared
    try:
        torch.ones(2, device="cuda").sum().item()
        r["sticky"] = "no error"
    except Exception as e:
        r["sticky"] = _common.exc_name(e)
    try:
        torch.cuda.synchronize()
        r["sticky_sync"] = "no error"
    except Exception as e:
        r["sticky_sync"] = _common.exc_name(e)
    return r


if __name__ == "__main__":
    _common.run(main)
