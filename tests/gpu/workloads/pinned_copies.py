# compare: exact
"""Pinned host memory (pin_memory, is_pinned), non_blocking H2D/D2H copies on
the default and a side stream, pageable copies. Timed: 10 round trips of
32 MiB pinned H2D + D2H with non_blocking=True."""
import _common

N = 8 << 20  # floats: 32 MiB


def main():
    torch = _common.setup()
    r = {}
    h = torch.randn(N)
    hp = h.pin_memory()
    r["pinned"] = [h.is_pinned(), hp.is_pinned()]
    d = hp.to("cuda", non_blocking=True)
    d2 = d * 2
    out = torch.empty(N, pin_memory=True)
    out.copy_(d2, non_blocking=True)
    ev = torch.cuda.Event()
    ev.record()
    ev.synchronize()
    r["d2h_pinned"] = _common.digest(out)
    r["d2h_pageable"] = _common.digest(d2.cpu())
    nb = (d + 1).to("cpu", non_blocking=True)
    torch.cuda.synchronize()
    r["d2h_nonblocking_new"] = _common.digest(nb)
    r["nonblocking_new_pinned"] = nb.is_pinned()

    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        d3 = hp[: N // 2].to("cuda", non_blocking=True)
        e = d3.sum()
    side.synchronize()
    r["side_stream_sum"] = _common.digest(e)

    # Slices and offsets within a pinned buffer.
    part = torch.zeros(1000, pin_memory=True)
    part.copy_(d[12345:13345], non_blocking=True)
    torch.cuda.synchronize()
    r["slice"] = _common.digest(part)
    r["pageable_h2d"] = _common.digest(h[:1000].cuda() * 3)

    back = torch.empty(N, pin_memory=True)
    dev = torch.empty(N, device="cuda")
    for _ in range(2):
        dev.copy_(hp, non_blocking=True)
        back.copy_(dev, non_blocking=True)
    with _common.Timer() as t:
        for _ in range(10):
            dev.copy_(hp, non_blocking=True)
            back.copy_(dev, non_blocking=True)
    r["roundtrip_equal"] = bool(torch.equal(back, hp))
    r["_GBps"] = 2 * 10 * N * 4 / t.s / 1e9
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
