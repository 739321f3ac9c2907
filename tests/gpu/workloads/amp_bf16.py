# compare: exact
"""Automatic mixed precision with bf16 (torch.autocast): op dtypes under
autocast, a 20-step AdamW training loop on an MLP+LayerNorm, loss curve and
final weights. Timed: the 20 steps."""
import _common


def main():
    torch = _common.setup()
    r = {}
    g = torch.Generator(device="cuda").manual_seed(6)
    a = torch.randn(64, 64, device="cuda", generator=g)
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        mm = a @ a
        ln = torch.nn.functional.layer_norm(mm, (64,))
        sm = torch.softmax(mm, dim=-1)
        added = mm + a
    r["dtypes"] = [str(t.dtype) for t in (mm, ln, sm, added)]
    r["autocast_enabled_outside"] = torch.is_autocast_enabled("cuda")

    model = torch.nn.Sequential(
        torch.nn.Linear(256, 512), torch.nn.LayerNorm(512), torch.nn.GELU(),
        torch.nn.Linear(512, 512), torch.nn.GELU(), torch.nn.Linear(512, 10),
    ).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(20, 128, 256, device="cuda", generator=g)
    y = torch.randint(0, 10, (20, 128), device="cuda", generator=g)
    losses = []
    with _common.Timer() as t:
        for i in range(20):
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                out = model(x[i])
                loss = torch.nn.functional.cross_entropy(out, y[i])
            loss.backward()
            opt.step()
            losses.append(loss.detach())
    r["loss_dtype"] = str(losses[0].dtype)
    r["losses"] = [float(l) for l in losses]
    r["params"] = _common.params_digest(model)
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
