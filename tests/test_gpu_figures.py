"""benchmarks/gpu_figures.py: issue 9's figures read from a GPU results file (written by hand
here: no GPU), against fractions worked out in the tests."""

import importlib.util
from pathlib import Path

from kernbench.results import RunWriter

from .conftest import ROOT, case_record

spec = importlib.util.spec_from_file_location("gpu_figures", ROOT / "benchmarks" / "gpu_figures.py")
gpu_figures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_figures)

CEILINGS = {"cuda:0": {"name": "NVIDIA H100 80GB HBM3", "copy_gbps": 3000.0,
                       "update_gbps": 2900.0,
                       "gemm_gflops": {"bfloat16": 800e3, "float32": 50e3, "tf32": 400e3}}}
SOFTMAX = "softmax/{}/cuda/bfloat16/forward/rows=32768,cols=4096"
MATMUL = "matmul/{}/cuda/bfloat16/forward/m=8192,n=8192,k=8192"
ATTENTION = "attention/{}/cuda/bfloat16/forward/batch=1,heads=16,seq=4096,head_dim=128"


def record(cid: str, median_s: float, *, gbps=None, gflops=None, **extra) -> dict:
    backend = cid.split("/")[1]
    rec = case_record(cid.replace(backend, backend.split(":")[0], 1), [median_s] * 5, **extra)
    rec["id"] = cid
    rec["variant"] = backend.partition(":")[2]
    rec["gbps"], rec["gflops"] = gbps, gflops
    return rec


def write(path: Path, records: list[dict], ceilings: dict | None = CEILINGS) -> str:
    header = {"type": "run", "schema": 1, "run_id": "g", "suite": "gpu", "fingerprint": "f",
              "settings": {"threads": 16}, "machine": {}, "software": {},
              "started": "2026-12-08T00:00:00", "ceilings": ceilings or {}}
    with RunWriter(path, header) as w:
        for r in records:
            w.write(r)
    return str(path)


def row(text: str, *cells: str) -> list[str]:
    """The cells of the one table row that starts with `cells`."""
    found = [line for line in text.splitlines()
             if line.startswith("| " + " | ".join(cells) + " |")]
    assert len(found) == 1, (cells, text)
    return [c.strip() for c in found[0].strip("|").split("|")]


def test_memory_bound_fraction_is_of_the_measured_copy(tmp_path):
    # softmax 32768 x 4096 bf16 moves 2 x 268 MB: 0.2 ms is 2684 GB/s, 89% of 3000
    path = write(tmp_path / "g.jsonl", [
        record(SOFTMAX.format("triton"), 0.2e-3, gbps=2684.4),
        record(SOFTMAX.format("torch_eager"), 0.25e-3, gbps=2147.5),
        # faster still, but suspect (past the roof): never the fastest
        record(SOFTMAX.format("torch_eager:manual"), 0.05e-3, gbps=10737.0, flags=["suspect"]),
    ])
    cells = row(gpu_figures.figures(path), "softmax", "rows=32768,cols=4096", "bfloat16")
    assert cells[3] == "triton" and cells[5] == "2684" and cells[6] == "89%"
    assert cells[7] == "yes" and cells[8:] == ["2684", "89%"]


def test_below_target_says_no_and_triton_is_shown_beside_the_fastest(tmp_path):
    path = write(tmp_path / "g.jsonl", [
        record(SOFTMAX.format("triton"), 0.4e-3, gbps=1342.2),
        record(SOFTMAX.format("torch_eager"), 0.3e-3, gbps=1789.6),
    ])
    cells = row(gpu_figures.figures(path), "softmax", "rows=32768,cols=4096", "bfloat16")
    assert cells[3] == "torch_eager" and cells[6] == "60%" and cells[7] == "no"
    assert cells[8:] == ["1342", "45%"]


def test_matmul_is_triton_over_cublas(tmp_path):
    path = write(tmp_path / "g.jsonl", [
        record(MATMUL.format("triton"), 1.8e-3, gflops=610.8e3),
        record(MATMUL.format("torch_eager"), 1.4e-3, gflops=785.4e3),
    ])
    cells = row(gpu_figures.figures(path), "m=8192,n=8192,k=8192", "bfloat16")
    assert cells[4:7] == ["611", "785", "78%"]  # 610.8 / 785.4
    assert cells[7] == "76%" and cells[8] == "yes"  # of the 800 TFLOP/s GEMM ceiling


def test_attention_against_sdpa_and_what_has_no_figure(tmp_path):
    path = write(tmp_path / "g.jsonl", [
        # a kernel that raised: failed, with no accuracy figures
        record(ATTENTION.format("triton"), 1.0e-3, gflops=400e3, status="failed", accuracy=None),
        record(ATTENTION.format("torch_eager"), 0.8e-3, gflops=500e3),
    ])
    cells = row(gpu_figures.figures(path), "batch=1,heads=16,seq=4096,head_dim=128", "bfloat16")
    assert cells[2] == "failed: not ranked"  # a failed Triton kernel has no TFLOP/s
    assert cells[5] == "500" and cells[6] == "not measured"


def test_without_gpu_ceilings_no_fraction_is_made_up(tmp_path):
    path = write(tmp_path / "g.jsonl", [record(SOFTMAX.format("triton"), 0.2e-3, gbps=2684.4)],
                 ceilings={})
    text = gpu_figures.figures(path)
    assert "no ceilings for cuda:0" in text
    cells = row(text, "softmax", "rows=32768,cols=4096", "bfloat16")
    assert cells[6] == "not measured" and cells[7] == ""


def test_a_file_that_is_not_a_results_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\n")
    assert gpu_figures.main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpu_figures: error:") and len(err.strip().splitlines()) == 1


def test_a_missing_file_exits_2(tmp_path):
    assert gpu_figures.main([str(tmp_path / "nothing.jsonl")]) == 2
