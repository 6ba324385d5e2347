"""A wrong kernel passed with --kernels is reported as failing accuracy; a kernel that raises,
crashes its process or hangs is recorded and the rest of the sweep is still ok."""

import json

import pytest

from kernbench.cli import main
from kernbench.results import read_run

from .conftest import ROOT, write_kernel

SPEC = (ROOT / "kernels" / "softmax" / "spec.py").read_text()
GOOD = "import numpy as np\n" + (ROOT / "kernels/softmax/softmax_numpy.py").read_text()

WRONG = {
    "zeros": "import numpy as np\ndef forward(x):\n    return np.zeros_like(x)\n",
    "nan": "import numpy as np\ndef forward(x):\n    return np.full_like(x, np.nan)\n",
    "input": "def forward(x):\n    return x.copy()\n",
    "off1e3": GOOD + "\n_f = forward\ndef forward(x):\n    return _f(x) * (1 + 1e-3)\n",
    "uniform": ("import numpy as np\n"
                "def forward(x):\n    return np.full_like(x, 1.0 / x.shape[-1])\n"),
    # right on the first call's inputs only: the second, fresh input draw catches it
    "memo": GOOD + ("\n_f, _first = forward, []\ndef forward(x):\n"
                    "    _first or _first.append(_f(x))\n    return _first[0].copy()\n"),
}
#: backward-mode counterparts: right on the first draw's gradients only, or off by 1e-3
WRONG_BACKWARD = {
    "memo": GOOD + ("\n_b, _first = backward, []\ndef backward(y, g):\n"
                    "    _first or _first.append(_b(y, g))\n"
                    "    return tuple(a.copy() for a in _first[0])\n"),
    "off1e3": GOOD + ("\n_b = backward\ndef backward(y, g):\n"
                      "    return tuple(a * (1 + 1e-3) for a in _b(y, g))\n"),
}


def suite(tmp_path, kernel, backends='["numpy"]', extra=""):
    path = tmp_path / "suite.toml"
    path.write_text(f"""
[suite]
backends = {backends}
dtypes = ["float32"]
budget_s = 0.0
min_samples = 2
warmup_s = 0.0
min_block_s = 0.0001
timeout_s = 60
{extra}
[kernels.{kernel}]
params = {{ rows = [8], cols = [32] }}
""")
    return path


@pytest.mark.parametrize("kind", sorted(WRONG))
def test_wrong_kernel_fails_accuracy(tmp_path, kind):
    name = f"wrong_{kind}"
    write_kernel(tmp_path / "k", name, SPEC, {"numpy": WRONG[kind]})
    out = tmp_path / "r.jsonl"
    code = main(["run", str(suite(tmp_path, name)), "--kernels", str(tmp_path / "k"),
                 "-o", str(out), "--isolate", "none", "--calibrate", "skip", "--no-progress"])
    assert code == 0
    (case,) = read_run(out).cases
    assert case["status"] == "failed"
    assert case["reason"].startswith("inaccurate")
    assert case["accuracy"]["passed"] is False


@pytest.mark.parametrize("kind", sorted(WRONG_BACKWARD))
@pytest.mark.parametrize("mode", ["backward", "forward_backward"])
def test_wrong_backward_fails_accuracy(tmp_path, kind, mode):
    name = f"wrongbwd_{kind}"
    write_kernel(tmp_path / "k", name, SPEC, {"numpy": WRONG_BACKWARD[kind]})
    out = tmp_path / "r.jsonl"
    code = main(["run", str(suite(tmp_path, name, extra=f'modes = ["{mode}"]')), "--kernels",
                 str(tmp_path / "k"), "-o", str(out), "--isolate", "none", "--calibrate", "skip",
                 "--no-progress"])
    assert code == 0
    (case,) = read_run(out).cases
    assert case["status"] == "failed" and case["reason"].startswith("inaccurate"), case["reason"]
    assert case["accuracy"]["passed"] is False


FAULTS = {
    "raises": "def forward(x):\n    raise RuntimeError('boom <b>')\n",
    "aborts": "import os\ndef forward(x):\n    os.abort()\n",
    "segfault": ("import os, signal, sys\ndef forward(x):\n"
                 "    print('last words before SIGSEGV', file=sys.stderr, flush=True)\n"
                 "    os.kill(os.getpid(), signal.SIGSEGV)\n"),
    "hangs": "import time\ndef forward(x):\n    time.sleep(3600)\n",
}


def test_faults_are_recorded_and_sweep_goes_on(tmp_path):
    root = tmp_path / "k"
    for kind, src in FAULTS.items():
        write_kernel(root, f"f_{kind}", SPEC, {"numpy": src})
    write_kernel(root, "f_good", SPEC, {"numpy": GOOD})
    path = tmp_path / "suite.toml"
    body = "\n".join(f"[kernels.f_{k}]\nparams = {{ rows = [8], cols = [32] }}"
                     for k in [*FAULTS, "good"])
    path.write_text('[suite]\nbackends = ["numpy"]\nbudget_s = 0.0\nmin_samples = 2\n'
                    'warmup_s = 0.0\nmin_block_s = 0.0001\ntimeout_s = 5\n' + body)
    out = tmp_path / "r.jsonl"
    assert main(["run", str(path), "--kernels", str(root), "-o", str(out),
                 "--calibrate", "skip", "--no-progress"]) == 0
    status = {c["kernel"]: c for c in read_run(out).cases}
    assert status["f_raises"]["status"] == "failed"
    assert "boom <b>" in status["f_raises"]["reason"]
    # the reason names the line to open: the innermost frame in the kernel's own files
    assert status["f_raises"]["reason"].endswith("(f_raises_numpy.py:2)")
    assert status["f_aborts"]["status"] == "crashed"
    assert "SIGABRT" in status["f_aborts"]["reason"]
    assert status["f_segfault"]["status"] == "crashed"
    assert "SIGSEGV" in status["f_segfault"]["reason"]
    assert "last words before SIGSEGV" in status["f_segfault"]["reason"]  # stderr's tail
    assert status["f_hangs"]["status"] == "timeout"
    assert "exceeded 5 s" in status["f_hangs"]["reason"]
    assert status["f_good"]["status"] == "ok"
    assert len(status) == 5
    lines = out.read_text().splitlines()
    assert all(json.loads(line) for line in lines)


def test_malformed_kernel_folder_names_the_file(tmp_path, capsys):
    write_kernel(tmp_path / "k", "broken", "SPEC = 3\n", {"numpy": GOOD})
    code = main(["list", "--kernels", str(tmp_path / "k")])
    assert code == 2
    err = capsys.readouterr().err
    assert "broken/spec.py" in err and "KernelSpec" in err


def test_backend_file_without_forward_names_the_file(tmp_path, capsys):
    write_kernel(tmp_path / "k", "noforward", SPEC, {"numpy": "def fwd(x):\n    return x\n"})
    assert main(["list", "--kernels", str(tmp_path / "k")]) == 2
    assert "noforward_numpy.py: defines no forward()" in capsys.readouterr().err


def test_unknown_family_in_file_name(tmp_path, capsys):
    write_kernel(tmp_path / "k", "odd", SPEC, {"tensorflow": GOOD})
    assert main(["list", "--kernels", str(tmp_path / "k")]) == 2
    assert "odd_tensorflow.py" in capsys.readouterr().err


def test_a_failure_before_entering_the_kernel_names_the_file_called(tmp_path):
    """A call the harness makes with arguments the kernel does not take (a backward without
    the static params) fails in the harness's frame: the reason names the file it called."""
    from kernbench.worker import _kernel_frame

    def harness_call():
        def backward(saved, grad):  # the kernel's signature, as written in its file
            return grad
        return backward(None, None, dim=-1)

    with pytest.raises(TypeError) as info:
        harness_call()
    assert _kernel_frame(info.value, str(tmp_path), "/k/softmax/softmax_torch.py") == (
        "calling softmax_torch.py")
    here = _kernel_frame(info.value, str(ROOT / "tests"), "unused.py")
    assert here.startswith("test_wrong_kernels.py:"), here
