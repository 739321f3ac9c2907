# compare: exact
"""torch.utils.data.DataLoader(num_workers=2, pin_memory=True) feeding a CUDA
model: worker processes (forked after CUDA is initialised in the parent),
the pin-memory thread, non_blocking H2D copies; 2 epochs, shuffled with a
seeded generator. Timed: the second epoch."""
import torch

import _common


class Synthetic(torch.utils.data.Dataset):
    """Item i is a deterministic function of i (any worker may produce it)."""

    def __len__(self):
        return 512

    def __getitem__(self, i):
        gen = torch.Generator().manual_seed(1000 + i)
        return torch.randn(3, 32, 32, generator=gen), i % 10


def main():
    _common.setup()
    F = torch.nn.functional
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(16, 10)).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = torch.utils.data.DataLoader(
        Synthetic(), batch_size=32, shuffle=True, num_workers=2, pin_memory=True,
        generator=torch.Generator().manual_seed(0), persistent_workers=False)
    r = {"epochs": []}
    t = None
    for epoch in range(2):
        timer = _common.Timer()
        timer.__enter__()
        losses, pinned, labels = [], [], 0
        for xb, yb in loader:
            pinned.append(xb.is_pinned())
            xb = xb.cuda(non_blocking=True)
            yb = yb.cuda(non_blocking=True)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
            labels += int(yb.sum())
        timer.__exit__(None, None, None)
        t = timer.s
        r["epochs"].append({"losses": [float(l) for l in losses], "all_pinned": all(pinned),
                            "batches": len(pinned), "label_sum": labels})
    r["params"] = _common.params_digest(model)
    r["time_s"] = t
    return r


if __name__ == "__main__":
    _common.run(main)
