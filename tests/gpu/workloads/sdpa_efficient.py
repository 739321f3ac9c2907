# compare: rtol=2e-2 atol=1e-3
"""scaled_dot_product_attention forced to the EFFICIENT_ATTENTION backend
(memory-efficient, cutlass): bf16/fp16/fp32, an additive attention mask,
causal, forward + backward, checked against math. Timed: 20 fwd+bwd steps."""
import _common


def main():
    torch = _common.setup(deterministic=False)
    F = torch.nn.functional
    from torch.nn.attention import SDPBackend, sdpa_kernel

    r = {"mem_efficient_enabled": torch.backends.cuda.mem_efficient_sdp_enabled()}
    g = torch.Generator(device="cuda").manual_seed(5)
    for dt in (torch.bfloat16, torch.float16, torch.float32):
        for kind in ("full", "causal", "mask"):
            tag = "%s_%s" % (str(dt).replace("torch.", ""), kind)
            q, k, v = (torch.randn(2, 4, 192, 64, device="cuda", dtype=dt, generator=g)
                       .requires_grad_(True) for _ in range(3))
            mask = None
            if kind == "mask":
                mask = torch.randn(2, 4, 192, 192, device="cuda", dtype=dt, generator=g)
            with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                     is_causal=(kind == "causal"))
            out.float().square().mean().backward()
            r[tag + "_out"] = _common.digest(out)
            r[tag + "_dk"] = _common.digest(k.grad)
            with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
                ref = F.scaled_dot_product_attention(
                    q.float(), k.float(), v.float(),
                    attn_mask=None if mask is None else mask.float(),
                    is_causal=(kind == "causal"))
            err = float((out.float() - ref).abs().max())
            r[tag + "_close_to_math"] = err < 2e-2
            r["_" + tag + "_err"] = err

    q, k, v = (torch.randn(8, 16, 512, 64, device="cuda", dtype=torch.float16, generator=g)
               .requires_grad_(True) for _ in range(3))

    def step():
        with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
            F.scaled_dot_product_attention(q, k, v).sum().backward()

    for _ in range(3):
        step()
    with _common.Timer() as t:
        for _ in range(20):
            step()
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
