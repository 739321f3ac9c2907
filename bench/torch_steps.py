"""PyTorch measures for `rgpu bench` (embedded in the rgpu binary; see
bench/torch_child.cc). Run as `python3 torch_steps.py MEASURE [STEPS]`, once
locally and once under `rgpu run`; prints result lines in rgpu bench's JSON
line format (bench/report.h) on stdout.

  first  process start to the first result computed on the GPU (torch
         import, CUDA initialisation, one kernel, one device-to-host copy).
  gpt    GPU-bound training step: a GPT-2-small-sized decoder (12 layers,
         12 heads, d=768, vocab 50304, context 1024, batch 8), bf16 autocast,
         AdamW, grad clipping, and loss.item() every step as a training loop
         logs it (one device-to-host wait per step).
  cnn    launch-bound training step: a small cuDNN CNN (conv-bn-relu-pool x2,
         dropout, linear) on 64 32x32 images, Adam, loss.item() every step.
Each step measure reports ms per step: the median of 3 timed runs of STEPS
steps, after warm-up steps (allocator, cuBLAS/cuDNN handles, autotuning).
"""
import json
import sys
import time

T0 = time.perf_counter()


def emit(key, num):
    # Compact, exactly as bench/report.h's result lines (the parser wants no spaces).
    print(json.dumps({"key": key, "num": num}, separators=(",", ":")), flush=True)


def gpt_model(torch):
    nn, F = torch.nn, torch.nn.functional
    V, D, H, L, T = 50304, 768, 12, 12, 1024

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
            return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

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

    return GPT(), V, T


def time_steps(torch, step, warmup, steps):
    for _ in range(warmup):
        step()
    runs = []
    for _ in range(3):
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
        runs.append((time.perf_counter() - t) * 1e3 / steps)
    return sorted(runs)[1]


def gpt(torch, steps):
    F = torch.nn.functional
    torch.manual_seed(0)
    model, V, T = gpt_model(torch)
    model = model.cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    B = 8
    data = torch.randint(0, V, (B, T + 1), device="cuda")
    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            logits = model(data[:, :-1])
        loss = F.cross_entropy(logits.float().view(-1, V), data[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())

    emit("torch.gpt.step_ms", time_steps(torch, step, 3, steps))


def cnn(torch, steps):
    F, nn = torch.nn.functional, torch.nn
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = False
    x = torch.randn(64, 3, 32, 32, device="cuda")
    y = torch.randint(0, 10, (64,), device="cuda")
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.2), nn.Linear(64 * 8 * 8, 10)).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())

    emit("torch.cnn.step_ms", time_steps(torch, step, 10, steps))


def main():
    measure = sys.argv[1]
    import torch
    if measure == "first":
        v = (torch.ones(4, device="cuda") * 2).sum().item()
        if v != 8:
            raise SystemExit(f"wrong result {v}")
        emit("torch.first_use_s", time.perf_counter() - T0)
        return
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    {"gpt": gpt, "cnn": cnn}[measure](torch, steps)


if __name__ == "__main__":
    main()
