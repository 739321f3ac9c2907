# compare: rtol=2e-2 atol=1e-4
"""Training loop: a small GPT-like decoder (token+position embeddings, 4
pre-LN blocks with causal SDPA and GELU MLP, tied head) on a synthetic
copy task, bf16 autocast, AdamW + grad clipping, 25 steps; then greedy
generation of 16 tokens. SDPA picks flash attention (atomic dQ), hence rtol.
Timed: the 25 steps."""
import _common

V, D, H, L, T, B = 256, 256, 8, 4, 128, 16


def build(torch):
    nn = torch.nn
    F = nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
            self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
            self.fc, self.out = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, H, D // H).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.proj(a.transpose(1, 2).reshape(b, t, D))
            return x + self.out(F.gelu(self.fc(self.ln2(x))))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(V, D), nn.Embedding(T, D)
            self.blocks = nn.ModuleList(Block() for _ in range(L))
            self.ln = nn.LayerNorm(D)

        def forward(self, idx):
            x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
            for blk in self.blocks:
                x = blk(x)
            return self.ln(x) @ self.tok.weight.t()

    return GPT()


def main():
    torch = _common.setup()
    F = torch.nn.functional
    g = torch.Generator(device="cuda").manual_seed(11)
    # Copy task: the second half of each sequence repeats the first half.
    half = torch.randint(0, V, (25, B, T // 2), device="cuda", generator=g)
    data = torch.cat([half, half], dim=2)
    torch.manual_seed(0)
    model = build(torch).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)

    def loss_of(batch):
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            logits = model(batch[:, :-1])
        return F.cross_entropy(logits.float().reshape(-1, V), batch[:, 1:].reshape(-1))

    losses = []
    with _common.Timer() as t:
        for i in range(25):
            opt.zero_grad(set_to_none=True)
            loss = loss_of(data[i])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(loss.detach())
    model.eval()
    idx = data[0, :2, :8]
    with torch.no_grad(), torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        for _ in range(16):
            nxt = model(idx)[:, -1].float().argmax(dim=-1, keepdim=True)
            idx = torch.cat([idx, nxt], dim=1)
    return {"losses": [float(l) for l in losses],
            "_generated": idx[:, 8:].tolist(),
            "params": _common.params_digest(model), "time_s": t.s}


if __name__ == "__main__":
    _common.run(main)
