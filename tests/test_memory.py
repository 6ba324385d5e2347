"""Peak memory: an implementation that allocates a known extra buffer shows that much more
peak memory, for each method: tracemalloc (NumPy), rss (torch on CPU), jax.memory_analysis.

Tolerances: tracemalloc counts exactly (1%); rss sees whole pages and allocator caching (10%);
XLA's plan may pad buffers (5%)."""

import pytest

from kernbench.case import Case

from .conftest import FAST, write_kernel

SPEC = """
from kernbench import KernelSpec


class Double(KernelSpec):
    defaults = {"rows": 64, "cols": 64, "extra": 0}
    inputs = ("x",)
    static_params = ("extra",)

    def make_inputs(self, params, rng):
        return {"x": rng.standard_normal((params["rows"], params["cols"]))}

    def reference(self, inputs, params):
        return (2.0 * inputs["x"],)

    def flops(self, params):
        return params["rows"] * params["cols"]

    def bytes(self, params, itemsize):
        return 2 * params["rows"] * params["cols"] * itemsize


SPEC = Double()
"""
EXTRA = {"numpy": 64 << 20, "torch": 64 << 20, "jax": 16 << 20}  # bytes

IMPLS = {
    "numpy": ("import numpy as np\n"
              "def forward(x, extra=0):\n"
              "    tmp = np.ones(extra // 8) if extra else None\n"
              "    out = x * 2.0\n"
              "    del tmp\n"
              "    return out\n", "tracemalloc", 0.01),
    "torch": ("import torch\n"
              "def forward(x, extra=0):\n"
              "    tmp = torch.ones(extra // 4) if extra else None\n"
              "    out = x * 2.0\n"
              "    del tmp\n"
              "    return out\n", "rss", 0.10),
    "jax": ("import jax, jax.numpy as jnp\n"
            "def forward(x, extra=0):\n"
            "    if not extra:\n"
            "        return x * 2.0\n"
            # XLA fuses elementwise temporaries away (even behind optimization_barrier); a
            # sort's buffer must exist
            "    n = extra // 4\n"
            "    big = jnp.sort(jnp.full((n,), x[0, 0]) * jnp.arange(n, dtype=jnp.float32))\n"
            "    return x * 2.0 + big[0] * 0.0\n", "jax.memory_analysis", 0.05),
}
BACKEND = {"numpy": "numpy", "torch": "torch_eager", "jax": "jax_jit"}


def peak(worker, folder, family, extra):
    name = f"mem{family}{extra}"
    kdir = write_kernel(folder, name, SPEC, {family: IMPLS[family][0]})
    case = Case(name, BACKEND[family], "", "cpu", "float32", "forward",
                (("rows", 64), ("cols", 64), ("extra", extra)))
    worker._kernels.clear()
    record = worker.execute(case, FAST, str(kdir), str(kdir / f"{name}_{family}.py"))
    assert record["status"] == "ok", record.get("reason")
    return record["memory"]


@pytest.mark.parametrize("family", sorted(IMPLS))
def test_extra_buffer_shows_in_peak(tmp_path, worker, family):
    _, method, tol = IMPLS[family]
    base = peak(worker, tmp_path / "a", family, 0)
    extra = EXTRA[family]
    more = peak(worker, tmp_path / "b", family, extra)
    assert base["method"] == more["method"] == method
    delta = more["peak_bytes"] - base["peak_bytes"]
    assert abs(delta - extra) <= tol * extra, (base, more)
    assert base["io_bytes"] == 2 * 64 * 64 * 4 and base["output_bytes"] == 64 * 64 * 4


TRAIN_SPEC = SPEC.replace('    inputs = ("x",)\n',
                          '    inputs = ("x",)\n    grad_inputs = ("x",)\n') \
    .replace("SPEC = Double()", '''    def reference_backward(self, inputs, params, grad_outputs):
        return (2.0 * grad_outputs[0],)


SPEC = Double()''')


@pytest.mark.parametrize("mode", ["backward", "forward_backward"])
def test_jax_train_modes_report_xla_plan(tmp_path, worker, mode):
    """JAX's backward modes time one executable each, and its compiled plan is their peak (on a
    GPU as on a CPU; process RSS would not see device memory): at least the gradients, plus the
    outputs the step returns in forward_backward."""
    name = f"memjaxtrain{mode}"
    kdir = write_kernel(tmp_path, name, TRAIN_SPEC, {"jax": IMPLS["jax"][0]})
    case = Case(name, "jax_jit", "", "cpu", "float32", mode,
                (("rows", 64), ("cols", 64), ("extra", 0)))
    record = worker.execute(case, FAST, str(kdir), str(kdir / f"{name}_jax.py"))
    assert record["status"] == "ok", record.get("reason")
    memory, grads = record["memory"], 64 * 64 * 4
    assert memory["method"] == "jax.memory_analysis"
    least = grads if mode == "backward" else 2 * grads
    assert least <= memory["peak_bytes"] <= least + 64 * 1024, memory
