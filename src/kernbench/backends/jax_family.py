"""JAX: `jax_jit` wraps the backend file's function in `jax.jit`. JAX dispatches asynchronously,
so the prepared callable blocks on its result (`block_until_ready`): without that the clock would
time the dispatch, not the work. float64 needs `jax_enable_x64`, without which JAX silently
computes in float32; the worker enables it before the first case."""

from __future__ import annotations

import numpy as np

from .base import Family, device_index


class JaxFamily(Family):
    name = "jax"
    backends = ("jax_jit",)
    requires = ("jax",)
    # the CUDA plugin carries XLA's GPU runtime: its version is part of what was measured
    distributions = ("jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin")

    def worker_env(self, device):
        # Don't let XLA grab most of a GPU, starving torch in a later worker.
        return {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}

    def unsupported(self, backend, device, dtype):
        if dtype not in self.dtypes:
            return f"{backend} does not support {dtype}"
        if device == "cpu":
            return None
        if self.is_gpu(device):
            import jax

            try:
                gpus = jax.devices("gpu")
            except RuntimeError:
                return "jax has no GPU backend here (install jax[cuda12])"
            index = device_index(device)
            if index >= len(gpus):
                return f"{device}: jax sees {len(gpus)} GPU(s)"
            return None
        return f"{backend} does not know device {device!r}"

    def setup(self, threads):
        import jax

        jax.config.update("jax_enable_x64", True)

    def _device(self, device):
        import jax

        if device == "cpu":
            return jax.devices("cpu")[0]
        index = device_index(device)
        return jax.devices("gpu")[index]

    def to_backend(self, array, dtype, device):
        import jax
        import jax.numpy as jnp

        if array.dtype.kind in "iub":
            host = np.require(array, requirements="C").copy()
        else:
            host = np.asarray(array, dtype=np.float64)
            host = host.astype(jnp.dtype(dtype))
        return jax.block_until_ready(jax.device_put(host, self._device(device)))

    def to_numpy(self, out):
        host = np.asarray(out)
        return host.astype(np.float64), str(host.dtype)

    def prepare(self, backend, fn, static_kwargs, device):
        import functools

        import jax

        jitted = jax.jit(functools.partial(fn, **static_kwargs) if static_kwargs else fn)

        def call(*args):
            return jax.block_until_ready(jitted(*args))

        call.jitted = jitted  # memory_analysis() reads the compiled executable
        return call

    def gpu_timer(self, settings):
        return "host_clock"  # JAX has no events: the host clock after block_until_ready

    def make_block(self, call, argsets, device, settings):
        if not self.is_gpu(device):
            return super().make_block(call, argsets, device, settings)
        import jax
        import jax.numpy as jnp

        from ..gpu_timing import FLUSH_FACTOR, PerfCounterEvent, make_event_block

        dev = self._device(device)
        l2 = 64 << 20  # JAX does not expose the L2 size; 64 MiB covers H100 (50) and H200 (60)
        zeros = jax.jit(lambda: jnp.zeros(FLUSH_FACTOR * l2 // 4, jnp.int32),
                        out_shardings=jax.sharding.SingleDeviceSharding(dev))

        def flush():
            zeros().block_until_ready()

        # no device events in JAX: the prepared call blocks on its result, so host time after
        # it is the call's time (plus dispatch, which a JAX user also pays)
        return make_event_block(call, argsets, new_event=lambda: PerfCounterEvent(lambda: None),
                                synchronize=lambda: None,
                                flush=flush if getattr(settings, "l2_flush", True) else None)

    def prepare_train(self, backend, module, static_kwargs, device, spec):
        return VjpTrainer(module.forward, static_kwargs, [spec.inputs.index(g)
                                                          for g in spec.grad_inputs],
                          len(spec.inputs))

    def memory_method(self, device):
        return "jax.memory_analysis"


class VjpTrainer:
    """jax_jit backward: `jax.vjp` under `jax.jit`. The forward returns its outputs and the
    VJP function (a pytree holding the residuals XLA chose to save), which a second jitted
    function applies to the cotangents: `backward` mode times only that application.

    `forward_backward` is one jitted step that returns the forward's outputs with the
    gradients, as a training step uses both (the loss, the activations). Returning only the
    gradients would let XLA drop forward work they do not need: a matmul's product, so its
    "forward + backward" was timed as the backward alone (91.7 ms against 40.9 + 87.3 ms
    for the two apart, 2048^3 float32 on the 2-core VM, flagged suspect at 1.23x the GEMM
    ceiling)."""

    def __init__(self, forward, static_kwargs, grad_index: list[int], n_inputs: int):
        import functools

        import jax

        fn = functools.partial(forward, **static_kwargs) if static_kwargs else forward
        self.index, self.n = grad_index, n_inputs

        def vjp(*args):
            def on_grads(*diff):
                full = list(args)
                for i, d in zip(grad_index, diff):
                    full[i] = d
                return fn(*full)

            return jax.vjp(on_grads, *(args[i] for i in grad_index))

        self._fwd = jax.jit(vjp)
        self._apply = jax.jit(lambda vjp_fn, g: vjp_fn(g))
        def step(args, g):
            out, vjp_fn = vjp(*args)
            return out, vjp_fn(g)

        self._fb = jax.jit(step)

    @staticmethod
    def _cot(outputs_like, cotangents):
        return cotangents if isinstance(outputs_like, (tuple, list)) else cotangents[0]

    @staticmethod
    def _step_cot(cotangents):
        """The whole step's cotangent argument: a tuple for several outputs, else the one."""
        return cotangents if len(cotangents) > 1 else cotangents[0]

    def state(self, *args):
        import jax

        out, vjp_fn = jax.block_until_ready(self._fwd(*args))
        return out, vjp_fn

    def outputs(self, state):
        out = state[0]
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)

    def backward(self, state, *cotangents):
        import jax

        return tuple(jax.block_until_ready(self._apply(state[1],
                                                       self._cot(state[0], cotangents))))

    def forward_backward(self, *a):
        import jax

        _, grads = jax.block_until_ready(self._fb(tuple(a[:self.n]),
                                                  self._step_cot(a[self.n:])))
        return tuple(grads)

    def planned_peak_bytes(self, mode: str, state_or_args: tuple, cotangents: tuple) -> int | None:
        """XLA's compiled plan (temporaries + outputs) of the one executable a mode times:
        `_apply` for `backward` (the residuals are its inputs, as a training step holds them)
        or `_fb` for `forward_backward`. The same method as the forward mode's, on any device;
        process RSS would see nothing of a GPU's memory."""
        from ..memory import jax_memory_analysis

        if mode == "backward":
            return jax_memory_analysis(self._apply, (state_or_args[1],
                                                     self._cot(state_or_args[0], cotangents)))
        return jax_memory_analysis(self._fb, (tuple(state_or_args[:self.n]),
                                              self._step_cot(cotangents)))

    def saved_bytes(self, *args):
        import jax

        _, vjp_fn = self._fwd(*args)
        return int(sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(vjp_fn)
                       if hasattr(leaf, "nbytes")))
