# compare: exact
"""Several streams (one high priority), wait_stream / wait_event chains,
record_stream, Stream.query/synchronize, default vs current stream.
Timed: a 50-step producer/consumer chain across two streams."""
import _common


def main():
    torch = _common.setup()
    r = {}
    lo, hi = torch.cuda.Stream.priority_range()
    r["priority_range"] = [lo, hi]
    s1 = torch.cuda.Stream()
    s2 = torch.cuda.Stream(priority=hi)
    r["s2_priority"] = s2.priority
    r["distinct_handles"] = len({s1.cuda_stream, s2.cuda_stream,
                                 torch.cuda.default_stream().cuda_stream}) == 3
    r["current_is_default"] = torch.cuda.current_stream() == torch.cuda.default_stream()

    a = torch.randn(512, 512, device="cuda")
    s1.wait_stream(torch.cuda.current_stream())
    s2.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s1):
        r["current_is_s1"] = torch.cuda.current_stream() == s1
        b = a @ a
    with torch.cuda.stream(s2):
        c = a * 2 + 1
    torch.cuda.current_stream().wait_stream(s1)
    torch.cuda.current_stream().wait_stream(s2)
    b.record_stream(torch.cuda.current_stream())
    d = b + c
    r["d"] = _common.digest(d)
    s1.synchronize()
    r["s1_query_idle"] = s1.query()

    def chain(steps):
        x = torch.ones(256, 256, device="cuda")
        acc = torch.zeros(256, 256, device="cuda")
        s1.wait_stream(torch.cuda.current_stream())
        s2.wait_stream(torch.cuda.current_stream())
        for _ in range(steps):
            with torch.cuda.stream(s1):
                x = x * 1.01 + 0.5
                e = s1.record_event()
            s2.wait_event(e)
            with torch.cuda.stream(s2):
                acc = acc + x.sum(dim=0, keepdim=True)
                e2 = s2.record_event()
            s1.wait_event(e2)
        torch.cuda.current_stream().wait_stream(s2)
        return acc

    chain(5)
    with _common.Timer() as t:
        acc = chain(50)
    r["chain"] = _common.digest(acc)
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
