"""The GPU timing logic, with fake events, flush and graph capture (no GPU needed): what is
timed is device time between events, the L2 flush happens before every call and outside the
events, graphs are captured once per block length, and warm-up waits for clocks to settle."""

from kernbench.gpu_timing import make_event_block, make_graph_block, warm_until_settled


class FakeGPU:
    """A stream: events record the device clock; calls advance it; flushes are logged."""

    def __init__(self, cost=1e-3, flush_cost=5e-4):
        self.now_ms = 0.0
        self.cost, self.flush_cost = cost, flush_cost
        self.log = []

    def event(self):
        gpu = self

        class E:
            def record(self):
                self.t = gpu.now_ms
                gpu.log.append("event")

            def elapsed_time(self, end):
                return end.t - self.t

        return E()

    def call(self, *args):
        self.log.append(("call", args))
        self.now_ms += self.cost * 1e3

    def flush(self):
        self.log.append("flush")
        self.now_ms += self.flush_cost * 1e3

    def sync(self):
        self.log.append("sync")


def test_event_block_times_calls_not_flushes():
    gpu = FakeGPU()
    block = make_event_block(gpu.call, [(0,), (1,)], new_event=gpu.event, synchronize=gpu.sync,
                             flush=gpu.flush)
    assert abs(block(3) - 3e-3) < 1e-12  # the three flushes (1.5 ms) are not counted
    calls = [e for e in gpu.log if isinstance(e, tuple)]
    assert [c[1] for c in calls] == [(0,), (1,), (0,)]
    body = [e if isinstance(e, str) else "call" for e in gpu.log]
    assert body == ["sync"] + ["flush", "event", "call", "event"] * 3 + ["sync"]
    block(1)  # the next block goes on with the next copy
    assert [e[1] for e in gpu.log if isinstance(e, tuple)][3:] == [(1,)]


def test_graph_block_captures_once_per_length():
    gpu = FakeGPU()
    captured = []

    def capture(body):
        captured.append(body)
        body()  # the warm-up before capture runs the calls on the device: outside the events
        return body  # replaying re-runs the recorded calls

    block = make_graph_block(gpu.call, [(0,)], capture=capture, new_event=gpu.event,
                             synchronize=gpu.sync)
    t1 = block(4)
    t2 = block(4)
    block(8)
    assert len(captured) == 2
    assert abs(t2 - 4e-3) < 1e-12 and abs(t1 - 4e-3) < 1e-12


def test_warmup_waits_for_clocks():
    times = iter([3.0, 2.0, 1.5, 1.2, 1.01, 1.0, 1.0, 1.0])
    now = [0.0]

    def block(n):
        now[0] += 0.01
        return next(times) * n

    assert warm_until_settled(block, min_s=0.0, clock=lambda: now[0])
    # stopped at the first pair within 2%: 1.01 -> 1.0
    assert next(times) == 1.0 and next(times) == 1.0


def test_warmup_gives_up_at_max():
    now = [0.0]

    def block(n):
        now[0] += 1.0
        return (1.0 + (now[0] % 2)) * n  # oscillates 2x forever

    assert not warm_until_settled(block, min_s=0.0, max_s=5.0, clock=lambda: now[0])


class AsyncGPU:
    """A stream fed by a slower host: each operation starts when the GPU is free and the host
    has enqueued it; a call's Python launch path costs `launch` of host time before its kernel
    is enqueued. Times in microseconds."""

    def __init__(self, launch, kernel=20.0, flush=33.0, spin=100.0):
        self.host = self.gpu = 0.0
        self.launch, self.kernel, self.flush_cost, self.spin_cost = launch, kernel, flush, spin

    def _enqueue(self, cost, host_cost=2.0):
        self.host += host_cost
        self.gpu = max(self.gpu, self.host) + cost
        return self.gpu

    def event(self):
        gpu = self

        class E:
            def record(self):
                self.t = gpu._enqueue(0.0)

            def elapsed_time(self, end):
                return (end.t - self.t) / 1e3  # milliseconds

        return E()

    def call(self, *args):
        self.host += self.launch
        self._enqueue(self.kernel)

    def flush(self):
        self._enqueue(self.flush_cost)

    def head_start(self):
        self._enqueue(self.spin_cost)


def test_head_start_keeps_host_launch_time_out_of_device_time():
    """A launcher slower than the GPU's work per call (60 us against a 33 us flush and a 20 us
    kernel) leaves the GPU idle after each start event: without a head start that idle time
    reads as kernel time; with it, the kernel's own 20 us are measured."""
    def timed(head_start):
        gpu = AsyncGPU(launch=60.0)
        block = make_event_block(gpu.call, [()], new_event=gpu.event, synchronize=lambda: None,
                                 flush=gpu.flush, head_start=gpu.head_start if head_start else None)
        return block(5) / 5 * 1e6  # us per call

    assert timed(head_start=False) > 20.0 + 10.0
    assert abs(timed(head_start=True) - 20.0) < 1e-9
