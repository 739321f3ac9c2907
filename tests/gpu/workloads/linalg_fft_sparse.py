# compare: rtol=1e-4 atol=1e-5
"""The CUDA libraries torch reaches besides cuBLAS/cuDNN: cuFFT (fft, rfft,
ifft round trip, fft2, stft/istft), cuSOLVER (solve, cholesky, qr, svd,
eigh, inv, det, lstsq, lu_factor), cuSPARSE (sparse CSR/COO times dense),
and CUB-backed ops (sort, topk, cumsum, unique, nonzero). rtol: cuSOLVER's
iterative eigen/SVD paths may order work differently between runs.
Timed: 50 batched 4096-point complex FFTs and 10 512x512 SVDs."""
import _common


def main():
    torch = _common.setup()
    d = _common.digest
    r = {}
    g = torch.Generator(device="cuda").manual_seed(5)

    x = torch.randn(16, 4096, device="cuda", generator=g)
    r["rfft"] = d(torch.fft.rfft(x).abs())
    c = torch.fft.fft(x.to(torch.complex64))
    r["fft"] = d(c.abs())
    r["fft_roundtrip_err_small"] = bool((torch.fft.ifft(c).real - x).abs().max().item() < 1e-4)
    img = torch.randn(4, 128, 128, device="cuda", generator=g)
    r["fft2"] = d(torch.fft.fft2(img).abs())
    win = torch.hann_window(512, device="cuda")
    sig = torch.randn(2, 16000, device="cuda", generator=g)
    spec = torch.stft(sig, n_fft=512, hop_length=128, window=win, return_complex=True)
    r["stft"] = d(spec.abs())
    back = torch.istft(spec, n_fft=512, hop_length=128, window=win, length=16000)
    r["istft_err_small"] = bool((back - sig).abs().max().item() < 1e-3)

    a = torch.randn(256, 256, device="cuda", dtype=torch.float64, generator=g)
    spd = a @ a.T + 256 * torch.eye(256, device="cuda", dtype=torch.float64)
    b = torch.randn(256, 8, device="cuda", dtype=torch.float64, generator=g)
    sol = torch.linalg.solve(spd, b)
    r["solve"] = d(sol)
    r["solve_residual_small"] = bool((spd @ sol - b).abs().max().item() < 1e-8)
    r["cholesky"] = d(torch.linalg.cholesky(spd))
    q, rr = torch.linalg.qr(a)
    r["qr_reconstructs"] = bool((q @ rr - a).abs().max().item() < 1e-8)
    r["svdvals"] = d(torch.linalg.svdvals(a))
    r["eigvalsh"] = d(torch.linalg.eigvalsh(spd))
    r["inv"] = d(torch.linalg.inv(spd))
    r["slogdet"] = [float(v) for v in torch.linalg.slogdet(spd)]
    r["lstsq"] = d(torch.linalg.lstsq(a[:, :64], b).solution)
    lu, piv = torch.linalg.lu_factor(a)
    r["lu"] = d(lu)
    r["batched_inv"] = d(torch.linalg.inv(spd[:64, :64].expand(8, 64, 64).contiguous()))

    dense = torch.randn(512, 512, device="cuda", generator=g)
    dense = torch.where(dense.abs() > 1.5, dense, torch.zeros_like(dense))
    rhs = torch.randn(512, 64, device="cuda", generator=g)
    r["csr_mm"] = d(dense.to_sparse_csr() @ rhs)
    r["coo_mm"] = d(torch.sparse.mm(dense.to_sparse(), rhs))
    r["nnz"] = int(dense.to_sparse().coalesce().indices().shape[1])

    v = torch.randn(100000, device="cuda", generator=g)
    r["sort"] = d(torch.sort(v).values)
    r["topk"] = d(torch.topk(v, 100).values)
    r["cumsum"] = d(torch.cumsum(v, 0))
    ints = (v * 10).round().to(torch.int64)
    r["unique"] = int(torch.unique(ints).numel())
    r["nonzero"] = int(torch.nonzero(ints > 5).shape[0])

    batch = torch.randn(64, 4096, device="cuda", dtype=torch.complex64)
    m = torch.randn(512, 512, device="cuda", generator=g)
    with _common.Timer() as t:
        for _ in range(50):
            out = torch.fft.fft(batch)
        for _ in range(10):
            s = torch.linalg.svdvals(m)
    r["_last"] = float(out.abs().sum().item() + s.sum().item())
    r["time_s"] = t.s
    return r


if __name__ == "__main__":
    _common.run(main)
