"""PyTorch training that pauses mid-run, for idle detach (docs/time-slicing.md).

Trains a small deterministic MLP + conv net for --steps steps and prints each
step's loss exactly (float.hex). With --pause S it sleeps S seconds before the
steps listed in --pause-at: a server started with `--detach-idle always
--idle-timeout T` (T < S) detaches the session there and reattaches it at the
next step. The loss curve must be identical, bit for bit, to an undisturbed
run (tests/gpu/detach_run.sh compares them).
"""
import argparse
import os
import time

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--pause", type=float, default=0.0)
    ap.add_argument("--pause-at", default="20,40")
    a = ap.parse_args()
    pause_at = {int(x) for x in a.pause_at.split(",") if x}

    import torch

    torch.manual_seed(0)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True)
    dev = "cuda"
    net = torch.nn.Sequential(
        # A strided conv instead of pooling: adaptive pooling's backward has no
        # deterministic CUDA kernel.
        torch.nn.Conv2d(3, 16, 3, stride=4, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(16 * 64, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10)).to(dev)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    g = torch.Generator(device=dev).manual_seed(1)
    x_all = torch.randn(64 * 8, 3, 32, 32, device=dev, generator=g)
    y_all = torch.randint(0, 10, (64 * 8,), device=dev, generator=g)
    # Some memory beyond the model, so a detach moves a fair amount.
    ballast = torch.full((256, 1024, 1024), 3.0, device=dev)
    for step in range(a.steps):
        if step in pause_at and a.pause > 0:
            time.sleep(a.pause)  # idle: the server may detach the session here
        i = (step % 8) * 64
        x, y = x_all[i:i + 64], y_all[i:i + 64]
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        print(f"LOSS {step} {loss.item().hex()}", flush=True)
    print(f"BALLAST {float(ballast.sum().item()).hex()}")
    print("DONE")


if __name__ == "__main__":
    main()
