# compare: exact
"""cuBLAS through torch: fp32 (TF32 off), TF32 (torch.backends.cuda.matmul.
allow_tf32 / fp32_precision), bf16 and fp16 GEMMs, odd shapes, bmm, addmm, transposed operands,
and the torch.backends.cuda.matmul flags. Timed: 50 bf16 4096^3 GEMMs."""
import _common


def main():
    torch = _common.setup()
    r = {}
    m = torch.backends.cuda.matmul
    g = torch.Generator(device="cuda").manual_seed(1)
    a = torch.randn(1024, 768, device="cuda", generator=g)
    b = torch.randn(768, 512, device="cuda", generator=g)

    # torch >= 2.9 has fp32_precision and warns on (and may refuse mixing with)
    # the legacy allow_tf32 flag: use the new one where it exists, only it.
    def set_tf32(on):
        if hasattr(m, "fp32_precision"):
            m.fp32_precision = "tf32" if on else "ieee"
            return m.fp32_precision
        m.allow_tf32 = on
        return m.allow_tf32

    r["tf32_off"] = set_tf32(False)
    fp32 = a @ b
    r["fp32"] = _common.digest(fp32)
    r["tf32_on"] = set_tf32(True)
    tf32 = a @ b
    r["tf32"] = _common.digest(tf32)
    r["tf32_differs_from_fp32"] = not torch.equal(fp32, tf32)
    set_tf32(False)

    r["bf16"] = _common.digest(a.bfloat16() @ b.bfloat16())
    r["fp16"] = _common.digest(a.half() @ b.half())
    r["flags"] = {
        "bf16_reduced": m.allow_bf16_reduced_precision_reduction,
        "fp16_reduced": m.allow_fp16_reduced_precision_reduction,
    }
    m.allow_bf16_reduced_precision_reduction = False
    r["bf16_no_reduced"] = _common.digest(a.bfloat16() @ b.bfloat16())
    m.allow_bf16_reduced_precision_reduction = True

    odd_a = torch.randn(257, 129, device="cuda", generator=g)
    odd_b = torch.randn(129, 63, device="cuda", generator=g)
    r["odd"] = _common.digest(odd_a @ odd_b)
    r["transposed"] = _common.digest(b.t() @ a.t())
    r["mv"] = _common.digest(a @ b[:, 0].contiguous())
    ba = torch.randn(8, 128, 64, device="cuda", generator=g)
    bb = torch.randn(8, 64, 96, device="cuda", generator=g)
    r["bmm"] = _common.digest(torch.bmm(ba, bb))
    r["bmm_bf16"] = _common.digest(torch.bmm(ba.bfloat16(), bb.bfloat16()))
    bias = torch.randn(512, device="cuda", generator=g)
    r["addmm"] = _common.digest(torch.addmm(bias, a, b, beta=0.5, alpha=2.0))
    r["dot"] = _common.digest(torch.dot(a[0], a[1]))

    x = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16, generator=g)
    y = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16, generator=g)
    for _ in range(5):
        z = x @ y
    with _common.Timer() as t:
        for _ in range(50):
            z = x @ y
    r["big_bf16"] = _common.digest(z)
    r["_TFLOPs"] = 50 * 2 * 4096 ** 3 / t.s / 1e12
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
