# compare: exact
"""torch.cuda.CUDAGraph: warm-up on a side stream, capture (MLP with cuBLAS,
elementwise, reduction), replay with new inputs, compare with eager.
Timed: 200 replays."""
import _common


def main():
    torch = _common.setup()
    r = {}
    model = torch.nn.Sequential(
        torch.nn.Linear(256, 512), torch.nn.GELU(), torch.nn.Linear(512, 256),
    ).cuda()
    static_x = torch.randn(64, 256, device="cuda")

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s), torch.no_grad():
        for _ in range(3):
            model(static_x)
    torch.cuda.current_stream().wait_stream(s)

    g = torch.cuda.CUDAGraph()
    r["capturing_outside"] = torch.cuda.is_current_stream_capturing()
    with torch.no_grad(), torch.cuda.graph(g):
        static_y = model(static_x)
        static_n = static_y.norm(dim=1).sum()
    outs = []
    diffs = []
    for i in range(3):
        x = torch.randn(64, 256, device="cuda")
        static_x.copy_(x)
        g.replay()
        with torch.no_grad():
            eager = model(x)
        outs.append(_common.digest(static_y))
        outs.append(float(static_n.item()))
        diffs.append(float((eager - static_y).abs().max().item()))
    r["replays"] = outs
    r["max_abs_diff_vs_eager"] = diffs
    r["graph_matches_eager"] = max(diffs) < 1e-4

    for _ in range(5):
        g.replay()
    with _common.Timer() as t:
        for _ in range(200):
            g.replay()
    r["final"] = _common.digest(static_y)
    g.reset()
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
