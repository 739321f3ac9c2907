# compare: exact
"""cuBLASLt through torch: F.linear with bias (addmm with a bias epilogue),
_addmm_activation (GELU/ReLU epilogues), bf16/fp16/fp32, the backward of a
biased linear (bias-grad epilogue), and FP8 torch._scaled_mm.
Timed: 50 bf16 linear+GELU fwd/bwd steps at 4096x4096."""
import _common


def main():
    torch = _common.setup()
    F = torch.nn.functional
    r = {}
    try:
        r["preferred_blas"] = str(torch.backends.cuda.preferred_blas_library())
    except Exception as e:
        r["preferred_blas"] = _common.exc_name(e)
    g = torch.Generator(device="cuda").manual_seed(2)
    x = torch.randn(512, 1024, device="cuda", generator=g)
    w = torch.randn(768, 1024, device="cuda", generator=g) * 0.03
    bias = torch.randn(768, device="cuda", generator=g)
    for dt in (torch.float32, torch.bfloat16, torch.float16):
        name = str(dt).replace("torch.", "")
        r["linear_" + name] = _common.digest(F.linear(x.to(dt), w.to(dt), bias.to(dt)))
        r["gelu_" + name] = _common.digest(
            torch._addmm_activation(bias.to(dt), x.to(dt), w.t().to(dt), use_gelu=True))
        r["relu_" + name] = _common.digest(
            torch._addmm_activation(bias.to(dt), x.to(dt), w.t().to(dt)))

    lin = torch.nn.Linear(1024, 768).cuda().bfloat16()
    xi = x.bfloat16().requires_grad_(True)
    lin(xi).float().square().mean().backward()
    r["bwd_wgrad"] = _common.digest(lin.weight.grad)
    r["bwd_bgrad"] = _common.digest(lin.bias.grad)
    r["bwd_xgrad"] = _common.digest(xi.grad)

    # FP8 (cuBLASLt only): a row-major, b column-major, per-tensor scales.
    try:
        a8 = torch.randn(256, 512, device="cuda", generator=g).to(torch.float8_e4m3fn)
        b8 = torch.randn(128, 512, device="cuda", generator=g).to(torch.float8_e4m3fn).t()
        one = torch.tensor(1.0, device="cuda")
        out = torch._scaled_mm(a8, b8, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
        out = out[0] if isinstance(out, tuple) else out
        r["fp8_scaled_mm"] = _common.digest(out)
    except Exception as e:
        r["fp8_scaled_mm"] = _common.exc_name(e)

    big = torch.nn.Linear(4096, 4096).cuda().bfloat16()
    inp = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16, generator=g)

    def step():
        big.zero_grad(set_to_none=True)
        F.gelu(big(inp)).sum().backward()

    for _ in range(3):
        step()
    with _common.Timer() as t:
        for _ in range(50):
            step()
    r["big_wgrad"] = _common.digest(big.weight.grad)
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
