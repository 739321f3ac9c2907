# compare: exact
# timeout: 300
"""torch.compile (inductor -> Triton kernels) of pointwise, reduction and
matmul-with-epilogue functions, with fresh Triton/inductor caches (the runner
gives every run its own). Timed: 100 calls of the compiled functions after
compilation."""
import _common


def main():
    torch = _common.setup()
    r = {}

    def pointwise(x, y):
        return torch.sin(x) * torch.sigmoid(y) + x.square() / (1 + y.abs())

    def reduce(x):
        return torch.softmax(x, dim=-1).mean(dim=0) + x.logsumexp(dim=1).sum()

    def mm_epilogue(a, b, bias):
        return torch.nn.functional.gelu(a @ b + bias).sum(dim=-1)

    g = torch.Generator(device="cuda").manual_seed(7)
    x = torch.randn(1024, 1024, device="cuda", generator=g)
    y = torch.randn(1024, 1024, device="cuda", generator=g)
    bias = torch.randn(1024, device="cuda", generator=g)
    cp, cr, cm = (torch.compile(f) for f in (pointwise, reduce, mm_epilogue))
    outs = {"pointwise": cp(x, y), "reduce": cr(x), "mm_epilogue": cm(x, y, bias)}
    for k, v in outs.items():
        r[k] = _common.digest(v)
    r["pointwise_close_to_eager"] = bool(torch.allclose(outs["pointwise"], pointwise(x, y),
                                                        rtol=1e-4, atol=1e-5))
    r["reduce_close_to_eager"] = bool(torch.allclose(outs["reduce"], reduce(x),
                                                     rtol=1e-4, atol=1e-3))
    try:
        from torch._inductor import metrics
        r["kernels_generated"] = metrics.generated_kernel_count > 0
    except Exception as e:
        r["kernels_generated"] = _common.exc_name(e)
    # A recompile for a new shape (dynamic=False by default here: marks a 2nd graph).
    r["pointwise_other_shape"] = _common.digest(cp(x[:300, :200], y[:300, :200]))

    with _common.Timer() as t:
        for _ in range(100):
            cp(x, y)
            cr(x)
            cm(x, y, bias)
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
