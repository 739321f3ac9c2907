# compare: exact
"""memory_allocated/reserved/max_*, memory_stats counters, empty_cache, and
mem_get_info seeing real cudaMalloc/cudaFree. Timed: 20 cycles of a fresh
64 MiB cudaMalloc + free (empty_cache), i.e. real allocations, not the cache."""
import _common

MiB = 1 << 20


def main():
    torch = _common.setup()
    torch.cuda.init()
    r = {}
    snap = []

    def note(tag):
        snap.append([tag, torch.cuda.memory_allocated(), torch.cuda.memory_reserved(),
                     torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved()])

    note("start")
    a = torch.empty(MiB, dtype=torch.uint8, device="cuda")  # small pool (2 MiB segment)
    note("1MiB")
    b = torch.empty(3 * MiB // 4, dtype=torch.float32, device="cuda")  # 3 MiB: large pool
    note("3MiB")
    c = torch.empty(25 * MiB, dtype=torch.uint8, device="cuda")  # > 10 MiB: rounded to 2 MiB
    note("25MiB")
    small = [torch.empty(1000, device="cuda") for _ in range(10)]
    note("small")
    del b, small
    note("freed")
    torch.cuda.reset_peak_memory_stats()
    note("reset_peak")
    torch.cuda.empty_cache()
    note("empty_cache")
    del a, c
    torch.cuda.empty_cache()
    note("all_freed")
    r["snapshots"] = snap
    st = torch.cuda.memory_stats()
    r["stats"] = {k: st.get(k) for k in (
        "allocation.all.allocated", "allocation.all.freed", "allocation.all.current",
        "segment.all.allocated", "segment.all.freed", "segment.all.current",
        "num_alloc_retries", "num_ooms", "allocated_bytes.all.allocated",
        "reserved_bytes.all.allocated")}

    f0, total = torch.cuda.mem_get_info()
    big = torch.empty(256 * MiB, dtype=torch.uint8, device="cuda")
    big.fill_(7)
    torch.cuda.synchronize()
    f1, _ = torch.cuda.mem_get_info()
    r["big_sum"] = int(big[:4096].sum().item())
    del big
    torch.cuda.empty_cache()
    f2, _ = torch.cuda.mem_get_info()
    r["free_dropped_by_256MiB"] = (f0 - f1) >= 250 * MiB
    r["free_recovered"] = (f2 - f1) >= 250 * MiB
    r["_free"] = [f0, f1, f2, total]

    with _common.Timer() as t:
        for i in range(20):
            x = torch.empty(64 * MiB, dtype=torch.uint8, device="cuda")
            x.fill_(i)
            del x
            torch.cuda.empty_cache()
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
