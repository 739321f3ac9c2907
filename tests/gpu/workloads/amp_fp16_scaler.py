# compare: rtol=2e-2 atol=1e-3
"""The common fp16 recipe: a channels_last conv net under
torch.autocast(float16) with torch.amp.GradScaler (inf checks, unscale,
skipped steps), cudnn.benchmark=True (cuDNN times its algorithms with
events and may pick different ones on each side, hence a tolerance),
torch.utils.checkpoint on one block, gradient accumulation over 2
micro-batches, clip_grad_norm_. Timed: 16 optimizer steps."""
import _common


def main():
    torch = _common.setup(deterministic=False)
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.deterministic = False
    from torch.utils.checkpoint import checkpoint

    r = {}
    g = torch.Generator(device="cuda").manual_seed(8)
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.BatchNorm2d(32),
                                            torch.nn.ReLU())
            self.block = torch.nn.Sequential(torch.nn.Conv2d(32, 64, 3, padding=1, stride=2),
                                             torch.nn.BatchNorm2d(64), torch.nn.ReLU(),
                                             torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.ReLU())
            self.head = torch.nn.Linear(64, 10)

        def forward(self, x):
            x = self.stem(x)
            x = checkpoint(self.block, x, use_reentrant=False)
            return self.head(x.mean(dim=(2, 3)))

    model = Net().cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0 ** 16)
    x = [t.contiguous(memory_format=torch.channels_last)
         for t in torch.randn(34, 32, 3, 32, 32, device="cuda", generator=g)]
    y = torch.randint(0, 10, (34, 32), device="cuda", generator=g)
    losses, scales, norms = [], [], []

    def train(steps, first):
        for s in range(steps):
            opt.zero_grad(set_to_none=True)
            for m in range(2):
                i = first + 2 * s + m
                with torch.autocast(device_type="cuda", dtype=torch.float16):
                    loss = torch.nn.functional.cross_entropy(model(x[i]), y[i]) / 2
                scaler.scale(loss).backward()
                losses.append(loss.detach())
            scaler.unscale_(opt)
            norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0).detach())
            scaler.step(opt)
            scaler.update()
            scales.append(scaler.get_scale())

    train(1, 0)
    with _common.Timer() as t:
        train(16, 2)
    r["losses"] = [float(l) for l in losses]
    r["grad_norms"] = [float(n) for n in norms]
    r["scales"] = scales
    r["loss_dtype"] = str(losses[0].dtype)
    r["params"] = _common.params_digest(model)
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
