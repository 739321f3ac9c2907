# compare: exact
"""cuDNN: conv2d forward/backward (fp32 NCHW, grouped, strided/dilated, fp16
channels_last), conv_transpose2d, conv1d/conv3d, batchnorm training forward/
backward with running stats and eval mode. cudnn.deterministic=True.
Timed: 20 fwd+bwd steps of a conv-bn-relu block at batch 32."""
import _common


def main():
    torch = _common.setup()
    F = torch.nn.functional
    r = {"cudnn_version": torch.backends.cudnn.version(),
         "cudnn_enabled": torch.backends.cudnn.enabled}
    g = torch.Generator(device="cuda").manual_seed(3)
    x = torch.randn(8, 16, 32, 32, device="cuda", generator=g, requires_grad=True)
    w = (torch.randn(32, 16, 3, 3, device="cuda", generator=g) * 0.1).requires_grad_(True)
    b = torch.randn(32, device="cuda", generator=g).requires_grad_(True)
    y = F.conv2d(x, w, b, padding=1)
    y.square().mean().backward()
    r["conv_fwd"] = _common.digest(y)
    r["conv_dx"] = _common.digest(x.grad)
    r["conv_dw"] = _common.digest(w.grad)
    r["conv_db"] = _common.digest(b.grad)

    with torch.no_grad():
        wg = torch.randn(32, 4, 3, 3, device="cuda", generator=g)
        r["grouped"] = _common.digest(F.conv2d(x, wg, groups=4, padding=1))
        r["strided_dilated"] = _common.digest(F.conv2d(x, w, stride=2, dilation=2, padding=2))
        wt = torch.randn(16, 8, 4, 4, device="cuda", generator=g)
        r["transpose"] = _common.digest(F.conv_transpose2d(x, wt, stride=2, padding=1))
        xh = x.detach().half().to(memory_format=torch.channels_last)
        r["fp16_channels_last"] = _common.digest(
            F.conv2d(xh, w.detach().half().to(memory_format=torch.channels_last), padding=1))
        x1 = torch.randn(4, 8, 100, device="cuda", generator=g)
        r["conv1d"] = _common.digest(F.conv1d(x1, torch.randn(12, 8, 5, device="cuda", generator=g)))
        x3 = torch.randn(2, 4, 8, 16, 16, device="cuda", generator=g)
        r["conv3d"] = _common.digest(
            F.conv3d(x3, torch.randn(6, 4, 3, 3, 3, device="cuda", generator=g), padding=1))

    bn = torch.nn.BatchNorm2d(32).cuda()
    z = torch.randn(8, 32, 16, 16, device="cuda", generator=g, requires_grad=True)
    out = bn(z)
    (out * torch.arange(32, device="cuda").view(1, 32, 1, 1)).sum().backward()
    r["bn_out"] = _common.digest(out)
    r["bn_dz"] = _common.digest(z.grad)
    r["bn_dweight"] = _common.digest(bn.weight.grad)
    r["bn_running"] = [_common.digest(bn.running_mean), _common.digest(bn.running_var)]
    bn.eval()
    with torch.no_grad():
        r["bn_eval"] = _common.digest(bn(z))

    block = torch.nn.Sequential(
        torch.nn.Conv2d(64, 64, 3, padding=1, bias=False), torch.nn.BatchNorm2d(64),
        torch.nn.ReLU(), torch.nn.Conv2d(64, 64, 3, padding=1),
    ).cuda()
    inp = torch.randn(32, 64, 56, 56, device="cuda", generator=g)

    def step():
        block.zero_grad(set_to_none=True)
        block(inp).mean().backward()

    for _ in range(3):
        step()
    with _common.Timer() as t:
        for _ in range(20):
            step()
    r["block_grads"] = _common.digest(block[0].weight.grad)
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
