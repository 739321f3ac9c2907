# compare: exact
"""torch.cuda.set_device / current_device / torch.cuda.device(i) over every
visible device, tensors placed on each, and the error for an ordinal past the
end. Timed: 2000 set_device + current_device calls (should be local)."""
import _common


def main():
    torch = _common.setup()
    r = {}
    n = torch.cuda.device_count()
    r["count"] = n
    placed = []
    for i in range(n):
        torch.cuda.set_device(i)
        x = torch.arange(8, device="cuda", dtype=torch.float32) * (i + 1)
        placed.append([torch.cuda.current_device(), x.device.index, float(x.sum().item())])
        with torch.cuda.device(0):
            placed.append(torch.cuda.current_device())
        placed.append(torch.cuda.current_device())
    r["placed"] = placed
    torch.cuda.set_device(0)
    y = torch.ones(4, device=f"cuda:{n - 1}")
    r["last_device_tensor"] = [y.device.index, float(y.sum().item())]
    try:
        torch.cuda.set_device(n)
        torch.zeros(1, device="cuda")
        r["past_end"] = "no error"
    except Exception as e:
        r["past_end"] = _common.exc_name(e)
    try:
        torch.cuda.set_device(0)
        r["still_works"] = float(torch.ones(3, device="cuda").sum().item())
    except Exception as e:
        r["still_works"] = _common.exc_name(e)

    with _common.Timer() as t:
        for _ in range(2000):
            torch.cuda.set_device(0)
            torch.cuda.current_device()
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
