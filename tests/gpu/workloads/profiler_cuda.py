# compare: exact
"""torch.profiler with CPU and CUDA activities around a few training steps
(kineto drives CUPTI, which asks the driver for its callback and activity
tables). Compared: the aten operators recorded and the results; the CUDA
kernel records (what CUPTI saw) are shown, not compared. Timed: the
profiled steps."""
import _common


def main():
    torch = _common.setup()
    from torch.profiler import ProfilerActivity, profile

    r = {}
    g = torch.Generator(device="cuda").manual_seed(4)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 8)).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(8, 32, 64, device="cuda", generator=g)
    y = torch.randint(0, 8, (8, 32), device="cuda", generator=g)
    with _common.Timer() as t:
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for i in range(8):
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(x[i]), y[i])
                loss.backward()
                opt.step()
            torch.cuda.synchronize()
    events = prof.key_averages()
    r["aten_ops"] = sorted({e.key for e in events if e.key.startswith("aten::")})
    r["loss"] = float(loss)
    r["params"] = _common.params_digest(model)
    kernels = [e for e in prof.events() if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA]
    r["_cuda_kernel_records"] = len(kernels)
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
