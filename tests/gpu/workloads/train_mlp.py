# compare: exact
"""Training loop: a 3-layer MLP on synthetic MNIST-sized data, SGD with
momentum, 60 steps. Loss curve, accuracy, final weights. Timed: the steps
after 5 warm-up steps (on a copy of the start state, so results do not
depend on the warm-up)."""
import _common


def main():
    torch = _common.setup()
    F = torch.nn.functional
    g = torch.Generator(device="cuda").manual_seed(8)
    x = torch.randn(4096, 784, device="cuda", generator=g)
    teacher = torch.randn(784, 10, device="cuda", generator=g)
    y = (x @ teacher).argmax(dim=1)

    def make():
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
            torch.nn.ReLU(), torch.nn.Linear(128, 10)).cuda()
        return model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def train(model, opt, steps):
        losses = []
        for i in range(steps):
            j = (i * 256) % 4096
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[j:j + 256]), y[j:j + 256])
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        return [float(l) for l in losses]

    train(*make(), 5)
    model, opt = make()
    with _common.Timer() as t:
        losses = train(model, opt, 60)
    with torch.no_grad():
        acc = float((model(x).argmax(dim=1) == y).float().mean())
    return {"losses": losses, "accuracy": acc, "params": _common.params_digest(model),
            "time_s": t.s}


if __name__ == "__main__":
    _common.run(main)
