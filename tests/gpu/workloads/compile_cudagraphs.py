# compare: exact
# timeout: 300
"""torch.compile(mode="reduce-overhead"): inductor's Triton kernels replayed
through CUDA graph trees (stream capture, graph instantiate and replay,
the static input copies), for inference and for a training step of an MLP
with LayerNorm. Timed: 30 compiled training steps."""
import _common


def main():
    torch = _common.setup()
    r = {}
    g = torch.Generator(device="cuda").manual_seed(21)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(128, 256), torch.nn.LayerNorm(256), torch.nn.GELU(),
        torch.nn.Linear(256, 256), torch.nn.GELU(), torch.nn.Linear(256, 10),
    ).cuda()
    x = torch.randn(40, 64, 128, device="cuda", generator=g)
    y = torch.randint(0, 10, (40, 64), device="cuda", generator=g)

    infer = torch.compile(model, mode="reduce-overhead")
    with torch.no_grad():
        eager = model(x[0])
        outs = [infer(x[i]).clone() for i in range(4)]  # warm-up, record, replays
    r["infer_first"] = _common.digest(outs[0])
    r["infer_last"] = _common.digest(outs[-1])
    r["infer_close_to_eager"] = bool(torch.allclose(outs[0], eager, rtol=1e-4, atol=1e-5))

    opt = torch.optim.SGD(model.parameters(), lr=0.05)

    def loss_of(inp, tgt):
        return torch.nn.functional.cross_entropy(model(inp), tgt)

    step = torch.compile(loss_of, mode="reduce-overhead")
    losses = []
    for i in range(4):
        opt.zero_grad(set_to_none=True)
        loss = step(x[i], y[i])
        loss.backward()
        opt.step()
        losses.append(float(loss))
    with _common.Timer() as t:
        for i in range(4, 34):
            opt.zero_grad(set_to_none=True)
            loss = step(x[i], y[i])
            loss.backward()
            opt.step()
            losses.append(loss.detach().clone())
    r["losses"] = [float(l) for l in losses]
    r["params"] = _common.params_digest(model)
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
