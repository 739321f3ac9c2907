# compare: exact
"""torch.cuda.synchronize, stream/event synchronize, torch.cuda.Event timing
(elapsed_time), Event.query on busy and idle work, cross-stream wait_event.
Timed: 200 x (tiny kernel + torch.cuda.synchronize), i.e. round trips."""
import _common


def main():
    torch = _common.setup()
    r = {}
    x = torch.randn(1024, 1024, device="cuda")
    y = x @ x
    torch.cuda.synchronize()

    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(10):
        y = y @ x / 32.0
    end.record()
    end.synchronize()
    ms = start.elapsed_time(end)
    r["elapsed_positive"] = ms > 0
    r["_elapsed_ms"] = ms
    r["end_query_after_sync"] = end.query()
    r["y"] = _common.digest(y)

    r["unrecorded_query"] = torch.cuda.Event().query()

    # A ~50 ms spin kernel: a query right after it must say "not done".
    s0 = torch.cuda.Event(enable_timing=True)
    s1 = torch.cuda.Event(enable_timing=True)
    s0.record()
    torch.cuda._sleep(100_000_000)
    s1.record()
    r["query_while_busy"] = s1.query()
    s1.synchronize()
    r["query_after_wait"] = s1.query()
    sleep_ms = s0.elapsed_time(s1)
    r["sleep_ge_10ms"] = sleep_ms >= 10.0
    r["_sleep_ms"] = sleep_ms

    # Event recorded on one stream, waited on by another.
    side = torch.cuda.Stream()
    ev = torch.cuda.Event()
    with torch.cuda.stream(side):
        torch.cuda._sleep(20_000_000)
        z = x * 3
        ev.record(side)
    torch.cuda.current_stream().wait_event(ev)
    w = z + 1
    torch.cuda.current_stream().synchronize()
    r["cross_stream"] = _common.digest(w)
    blocking = torch.cuda.Event(blocking=True)
    blocking.record()
    blocking.synchronize()
    r["blocking_done"] = blocking.query()

    small = torch.zeros(16, device="cuda")
    for _ in range(20):
        small += 1
        torch.cuda.synchronize()
    with _common.Timer() as t:
        for _ in range(200):
            small += 1
            torch.cuda.synchronize()
    r["small_sum"] = float(small.sum().item())
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
