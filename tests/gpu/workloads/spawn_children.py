# compare: exact
# timeout: 240
"""torch.multiprocessing with the spawn start method: the parent uses CUDA,
then two children that each use CUDA themselves (through rgpu, each its own
session: they queue for the card while another session holds it, and the
idle parent gives it up) compute on the GPU and send CPU results back
through a queue; the parent checks them against its own GPU computation.
Also: a forked child that never touches CUDA (a CPU worker) while the parent
holds a session. Timed: the whole spawn round."""
import _common


def child(rank, q):
    import torch

    g = torch.Generator(device="cuda").manual_seed(100 + rank)
    a = torch.randn(256, 256, device="cuda", generator=g)
    b = (a @ a.T).relu().sum(dim=1)
    # Plain numbers: a CPU tensor would travel as a shared-memory fd that
    # the parent must fetch from this process before it exits.
    q.put((rank, torch.cuda.device_count(), b.cpu().tolist()))


def cpu_worker(q):
    q.put(sum(i * i for i in range(1000)))


def main():
    torch = _common.setup()
    import torch.multiprocessing as mp

    r = {}
    base = torch.arange(10, device="cuda", dtype=torch.float32)
    r["parent_before"] = float(base.sum())

    fork_ctx = mp.get_context("fork")
    fq = fork_ctx.Queue()
    p = fork_ctx.Process(target=cpu_worker, args=(fq,))
    p.start()
    r["forked_cpu_worker"] = fq.get(timeout=60)
    p.join(60)
    r["forked_exit"] = p.exitcode

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    with _common.Timer() as t:
        procs = [ctx.Process(target=child, args=(rank, q)) for rank in range(2)]
        for p in procs:
            p.start()
        got = {}
        for _ in procs:
            rank, count, b = q.get(timeout=180)
            got[rank] = (count, b)
        for p in procs:
            p.join(60)
    r["child_exit"] = [p.exitcode for p in procs]
    for rank in range(2):
        count, b = got[rank]
        b = torch.tensor(b)
        g = torch.Generator(device="cuda").manual_seed(100 + rank)
        a = torch.randn(256, 256, device="cuda", generator=g)
        mine = (a @ a.T).relu().sum(dim=1).cpu()
        r["child%d" % rank] = {"device_count": count, "digest": _common.digest(b),
                               "matches_parent": bool(torch.equal(mine, b))}
    r["parent_after"] = float((base * 2).sum())
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
