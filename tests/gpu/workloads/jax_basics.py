# compare: rtol=1e-3 atol=1e-5
# env: XLA_PYTHON_CLIENT_PREALLOCATE=false
"""JAX (no torch) on the GPU through rgpu: device listing, jit-compiled
functions (XLA's own kernels, loaded as cubins), a matmul (cuBLAS/cuBLASLt),
a convolution (cuDNN), grad of a small MLP loss, jax.random, and a jitted
training step loop. rtol: XLA autotunes by timing and may pick another
algorithm. Timed: 50 jitted training steps."""
import _common


def main():
    import time

    import jax
    import jax.numpy as jnp
    import numpy as np

    r = {}
    devs = jax.devices()
    r["platform"] = devs[0].platform
    r["device_count"] = len(devs)
    r["_device"] = str(devs[0])
    key = jax.random.PRNGKey(0)
    k1, k2, k3 = jax.random.split(key, 3)
    a = jax.random.normal(k1, (512, 512), dtype=jnp.float32)
    b = jax.random.normal(k2, (512, 256), dtype=jnp.float32)
    r["random_sum"] = float(a.sum())

    @jax.jit
    def f(x, y):
        return jnp.tanh(x @ y).sum(axis=0)

    r["jit_matmul"] = np.asarray(f(a, b)).astype(float).tolist()[:16]
    img = jax.random.normal(k3, (8, 3, 32, 32), dtype=jnp.float32)
    ker = jnp.ones((16, 3, 3, 3), dtype=jnp.float32) / 27
    conv = jax.lax.conv_general_dilated(img, ker, (1, 1), "SAME")
    r["conv_sum"] = float(conv.sum())
    r["conv_shape"] = list(conv.shape)

    def loss(params, x, y):
        h = jnp.maximum(x @ params["w1"] + params["b1"], 0)
        out = h @ params["w2"]
        return jnp.mean((out - y) ** 2)

    params = {"w1": a[:, :128] * 0.05, "b1": jnp.zeros(128), "w2": b[:128, :10] * 0.05}
    x = a[:64]
    y = jnp.ones((64, 10))
    grads = jax.grad(loss)(params, x, y)
    r["grad_w1_sum"] = float(grads["w1"].sum())

    @jax.jit
    def step(p, x, y):
        l, g = jax.value_and_grad(loss)(p, x, y)
        return jax.tree_util.tree_map(lambda w, d: w - 0.01 * d, p, g), l

    p = params
    p, l0 = step(p, x, y)
    l0.block_until_ready()
    t0 = time.perf_counter()
    for _ in range(50):
        p, l = step(p, x, y)
    l.block_until_ready()
    r["time_s"] = time.perf_counter() - t0
    r["loss_first"] = float(l0)
    r["loss_last"] = float(l)
    r["host_roundtrip"] = np.asarray(jax.device_put(np.arange(10.0))).tolist()
    return r


if __name__ == "__main__":
    _common.run(main)
