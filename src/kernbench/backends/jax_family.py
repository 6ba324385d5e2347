"""JAX: `jax_jit` wraps the backend file's function in `jax.jit`. JAX dispatches asynchronously,
so the prepared callable blocks on its result (`block_until_ready`): without that the clock would
time the dispatch, not the work. float64 needs `jax_enable_x64`, without which JAX silently
computes in float32; the worker enables it before the first case."""

from __future__ import annotations

import numpy as np

from .base import Family


class JaxFamily(Family):
    name = "jax"
    backends = ("jax_jit",)
    requires = ("jax",)
    distributions = ("jax", "jaxlib")

    def worker_env(self, device):
        # Don't let XLA grab most of a GPU, starving torch in a later worker.
        return {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"}

    def unsupported(self, backend, device, dtype):
        if dtype not in self.dtypes:
            return f"{backend} does not support {dtype}"
        if device == "cpu":
            return None
        if device == "cuda" or device.startswith("cuda:"):
            import jax

            try:
                gpus = jax.devices("gpu")
            except RuntimeError:
                return "jax has no GPU backend here (install jax[cuda12])"
            index = int(device.split(":")[1]) if ":" in device else 0
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
        index = int(device.split(":")[1]) if ":" in device else 0
        return jax.devices("gpu")[index]

    def to_backend(self, array, dtype, device):
        import jax
        import jax.numpy as jnp

        if array.dtype.kind in "iub":
            host = np.ascontiguousarray(array)
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

    def memory_method(self, device):
        return "jax.memory_analysis"
