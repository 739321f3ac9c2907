# compare: rtol=2e-2 atol=1e-3
"""scaled_dot_product_attention forced to the FLASH_ATTENTION backend (bf16 and
fp16, causal and not, forward + backward), checked against the math backend.
Backward accumulates dQ with atomics, hence rtol. Timed: 20 fwd+bwd steps."""
import _common


def main():
    torch = _common.setup(deterministic=False)
    F = torch.nn.functional
    from torch.nn.attention import SDPBackend, sdpa_kernel

    r = {"flash_enabled": torch.backends.cuda.flash_sdp_enabled()}
    g = torch.Generator(device="cuda").manual_seed(4)
    for dt in (torch.bfloat16, torch.float16):
        for causal in (False, True):
            tag = "%s_%s" % (str(dt).replace("torch.", ""), "causal" if causal else "full")
            q, k, v = (torch.randn(4, 8, 256, 64, device="cuda", dtype=dt, generator=g)
                       .requires_grad_(True) for _ in range(3))
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            out.float().square().mean().backward()
            r[tag + "_out"] = _common.digest(out)
            r[tag + "_dq"] = _common.digest(q.grad)
            r[tag + "_dv"] = _common.digest(v.grad)
            with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
                ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float(),
                                                     is_causal=causal)
            err = float((out.float() - ref).abs().max())
            r[tag + "_close_to_math"] = err < 2e-2
            r["_" + tag + "_err"] = err

    q, k, v = (torch.randn(8, 16, 512, 64, device="cuda", dtype=torch.bfloat16, generator=g)
               .requires_grad_(True) for _ in range(3))

    def step():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()

    for _ in range(3):
        step()
    with _common.Timer() as t:
        for _ in range(20):
            step()
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
