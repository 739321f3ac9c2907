# compare: exact
# timeout: 300
"""Training loop through torch.compile: a conv+MLP model compiled with
inductor (Triton kernels for forward and backward), Adam, 20 steps.
Compilation happens in 2 warm-up steps on a copy; timed: the 20 steps."""
import _common


def main():
    torch = _common.setup()
    import copy

    F = torch.nn.functional
    g = torch.Generator(device="cuda").manual_seed(12)
    x = torch.randn(20, 64, 3, 32, 32, device="cuda", generator=g)
    y = torch.randint(0, 10, (20, 64), device="cuda", generator=g)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.GELU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.GELU(), torch.nn.AdaptiveAvgPool2d(4),
        torch.nn.Flatten(), torch.nn.Linear(64 * 16, 256), torch.nn.LayerNorm(256),
        torch.nn.GELU(), torch.nn.Linear(256, 10),
    ).cuda()
    start_state = copy.deepcopy(model.state_dict())
    cmodel = torch.compile(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in range(2):  # compile forward + backward
        F.cross_entropy(cmodel(x[i]), y[i]).backward()
    model.load_state_dict(start_state)
    opt.zero_grad(set_to_none=True)
    losses = []
    with _common.Timer() as t:
        for i in range(20):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(cmodel(x[i]), y[i])
            loss.backward()
            opt.step()
            losses.append(loss.detach())
    return {"losses": [float(l) for l in losses], "params": _common.params_digest(model),
            "time_s": t.s}


if __name__ == "__main__":
    _common.run(main)
