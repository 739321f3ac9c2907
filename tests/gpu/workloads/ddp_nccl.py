# compare: exact
# env: NCCL_NVLS_ENABLE=0
# env: TORCH_NCCL_ASYNC_ERROR_HANDLING=1
"""torch.distributed with the NCCL backend in one process (world size 1, as
a DDP script run on a one-GPU machine does): init_process_group, all_reduce,
broadcast, all_gather, barrier, and DistributedDataParallel training steps
of a small MLP. NCCL allocates its buffers with the driver's virtual memory
calls and runs a proxy thread. Timed: 50 DDP steps."""
import os
import socket

import _common


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    torch = _common.setup()
    import torch.distributed as dist
    import torch.nn as nn
    from torch.nn.parallel import DistributedDataParallel as DDP

    r = {}
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(free_port())
    torch.cuda.set_device(0)
    dist.init_process_group("nccl", rank=0, world_size=1, device_id=torch.device("cuda", 0))
    r["backend"] = dist.get_backend()
    t = torch.arange(1024, device="cuda", dtype=torch.float32)
    dist.all_reduce(t)
    r["all_reduce"] = _common.digest(t)
    dist.broadcast(t, src=0)
    out = [torch.empty_like(t)]
    dist.all_gather(out, t)
    r["all_gather"] = _common.digest(out[0])
    dist.barrier()

    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 10)).cuda()
    ddp = DDP(model, device_ids=[0])
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05)
    g = torch.Generator(device="cuda").manual_seed(3)
    x = torch.randn(128, 256, device="cuda", generator=g)
    y = torch.randint(0, 10, (128,), device="cuda", generator=g)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(ddp(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with _common.Timer() as tm:
        for _ in range(50):
            opt.zero_grad()
            nn.functional.cross_entropy(ddp(x), y).backward()
            opt.step()
    r["losses"] = losses
    r["params"] = _common.params_digest(model)
    r["time_s"] = tm.s
    dist.destroy_process_group()
    return r


if __name__ == "__main__":
    _common.run(main)
