# compare: exact
# env: PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
"""The caching allocator with expandable segments (cuMemCreate / cuMemMap /
cuMemAddressReserve / cuMemSetAccess): growing, shrinking and reusing memory,
with data kept intact. Timed: 20 grow/shrink cycles."""
import _common

MiB = 1 << 20


def main():
    torch = _common.setup()
    r = {}
    keep = torch.arange(1 << 20, device="cuda", dtype=torch.float32)
    snaps = [[torch.cuda.memory_allocated(), torch.cuda.memory_reserved()]]
    tensors = []
    for i in range(6):
        t = torch.full(((i + 1) * 8 * MiB // 4,), float(i), device="cuda")
        tensors.append(t)
        snaps.append([torch.cuda.memory_allocated(), torch.cuda.memory_reserved()])
    r["sums"] = [float(t.sum().item()) for t in tensors]
    del tensors[1::2]
    torch.cuda.empty_cache()
    snaps.append([torch.cuda.memory_allocated(), torch.cuda.memory_reserved()])
    more = torch.ones(40 * MiB // 4, device="cuda")
    snaps.append([torch.cuda.memory_allocated(), torch.cuda.memory_reserved()])
    r["sums_after"] = [float(t.sum().item()) for t in tensors] + [float(more.sum().item())]
    r["keep"] = _common.digest(keep)
    r["snapshots"] = snaps
    # The point of expandable segments: one growing segment, not one per size.
    r["segments"] = torch.cuda.memory_stats().get("segment.all.current")

    with _common.Timer() as t:
        for i in range(20):
            x = torch.empty((64 + i) * MiB, dtype=torch.uint8, device="cuda")
            x.fill_(1)
            del x
            torch.cuda.empty_cache()
    r["keep_after"] = _common.digest(keep)
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
