# compare: exact
"""Training loop: a small cuDNN CNN (conv-bn-relu-pool x2, dropout, linear) on
synthetic 32x32 RGB images, Adam, 30 steps; then eval. Loss curve, eval
accuracy, final weights. Timed: the 30 steps."""
import _common


def main():
    torch = _common.setup()
    F = torch.nn.functional
    g = torch.Generator(device="cuda").manual_seed(9)
    x = torch.randn(30, 64, 3, 32, 32, device="cuda", generator=g)
    y = torch.randint(0, 10, (30, 64), device="cuda", generator=g)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.BatchNorm2d(64), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Dropout(0.2), torch.nn.Linear(64 * 8 * 8, 10),
    ).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    # Warm up cuDNN/cuBLAS on a throwaway copy of the model.
    import copy
    warm = copy.deepcopy(model)
    F.cross_entropy(warm(x[0]), y[0]).backward()
    del warm
    torch.manual_seed(1)  # dropout masks
    losses = []
    with _common.Timer() as t:
        for i in range(30):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[i]), y[i])
            loss.backward()
            opt.step()
            losses.append(loss.detach())
    model.eval()
    with torch.no_grad():
        logits = model(x[:4].reshape(-1, 3, 32, 32))
    return {"losses": [float(l) for l in losses], "eval_logits": _common.digest(logits),
            "params": _common.params_digest(model), "time_s": t.s}


if __name__ == "__main__":
    _common.run(main)
