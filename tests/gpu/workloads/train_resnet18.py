# compare: rtol=1e-4 atol=1e-6
"""Training loop: torchvision resnet18(weights=None, num_classes=10) on
synthetic 64x64 images, batch 32, SGD, 10 steps. The adaptive-avg-pool
backward has no deterministic kernel (warn_only), hence a small rtol.
Timed: the 10 steps after 2 warm-up steps on a copy."""
import _common


def main():
    torch = _common.setup()
    import copy

    import torchvision

    F = torch.nn.functional
    g = torch.Generator(device="cuda").manual_seed(10)
    x = torch.randn(10, 32, 3, 64, 64, device="cuda", generator=g)
    y = torch.randint(0, 10, (10, 32), device="cuda", generator=g)
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).cuda()
    warm = copy.deepcopy(model)
    wopt = torch.optim.SGD(warm.parameters(), lr=0.01)
    for i in range(2):
        F.cross_entropy(warm(x[i]), y[i]).backward()
        wopt.step()
    del warm, wopt
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    losses = []
    with _common.Timer() as t:
        for i in range(10):
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[i]), y[i])
            loss.backward()
            opt.step()
            losses.append(loss.detach())
    model.eval()
    with torch.no_grad():
        logits = model(x[0])
    return {"losses": [float(l) for l in losses], "eval_logits": _common.digest(logits),
            "params": _common.params_digest(model),
            "torchvision": torchvision.__version__.split("+")[0], "time_s": t.s}


if __name__ == "__main__":
    _common.run(main)
