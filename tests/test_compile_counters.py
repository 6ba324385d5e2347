"""torch.compile's counters in real records (what the exact gate reads): a graph break is
counted, a recompile during the timed loop is counted, a clean kernel has neither, and the
cold/warm compile times are there."""

import pytest

from kernbench.case import Case

from .conftest import FAST, ROOT, write_kernel

SPEC = (ROOT / "kernels" / "softmax" / "spec.py").read_text()
TORCH = {
    "clean": "import torch\ndef forward(x):\n    return torch.softmax(x, -1)\n",
    # two graphs around an explicit break
    "graph_break": ("import torch\ndef forward(x):\n    y = torch.softmax(x, -1)\n"
                    "    torch._dynamo.graph_break()\n    return y * 1.0\n"),
    # a Python global read by the graph changes every call: Dynamo's guard on it fails and it
    # recompiles (the added 0.0 * n keeps the output right)
    "recompiles": ("import torch\n_n = [0]\ndef forward(x):\n    _n[0] += 1\n"
                   "    return torch.softmax(x, -1) + 0.0 * _n[0]\n"),
}


@pytest.fixture(scope="module")
def records(tmp_path_factory, worker):
    out = {}
    for kind, src in TORCH.items():
        name = f"compile_{kind}"
        kdir = write_kernel(tmp_path_factory.mktemp(kind), name, SPEC, {"torch": src})
        case = Case(name, "torch_compile", "", "cpu", "float32", "forward",
                    (("rows", 8), ("cols", 32)))
        out[kind] = worker.execute(case, FAST, str(kdir), str(kdir / f"{name}_torch.py"))
    return out


def test_clean_kernel_has_one_graph_and_no_recompile(records):
    record = records["clean"]
    assert record["status"] == "ok", record.get("reason")
    info = record["compile"]
    assert info["graphs"] == 1 and info["graph_breaks"] == 0 and info["recompiles"] == 0
    assert info["cold_s"] > 0 and info["warm_s"] > 0


def test_graph_break_is_counted(records):
    record = records["graph_break"]
    assert record["status"] == "ok", record.get("reason")
    assert record["compile"]["graph_breaks"] >= 1 and record["compile"]["graphs"] >= 2


def test_recompiles_in_the_timed_loop_are_counted(records):
    record = records["recompiles"]
    assert record["status"] == "ok", record.get("reason")
    assert record["compile"]["recompiles"] >= 1
