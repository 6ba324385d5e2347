"""The ceilings cache holds parts (the CPU, the GPUs), each measured when a run first needs it:
a GPU-only suite on a lent GPU must not wait for the CPU's GEMMs, and a later CPU run on the
same machine must measure the CPU then, without measuring the GPUs again."""

import json
import subprocess
import sys

import pytest

from kernbench import ceilings
from kernbench.cli import main

from .conftest import ROOT


@pytest.fixture
def fake_measure(monkeypatch):
    """measure_in_subprocess replaced: records the parts asked for, returns made-up figures of
    those parts (two GPUs, or the ones `gpus` names)."""
    asked: list[tuple[str, ...]] = []
    gpus = ["cuda:0", "cuda:1"]

    def measure(threads, env, memory_only=False, timeout=600, parts=ceilings.PARTS):
        assert not memory_only
        asked.append(tuple(parts))
        out = {"parts": sorted(parts), "measured": f"T{len(asked)}"}
        if "cpu" in parts:
            out["cpu"] = {"copy_gbps": 40.0 + len(asked), "measured": f"T{len(asked)}"}
        if "cuda" in parts:
            for dev in gpus:
                out[dev] = {"name": "H100", "copy_gbps": 3000.0 + len(asked),
                            "measured": f"T{len(asked)}"}
        return out

    monkeypatch.setattr(ceilings, "measure_in_subprocess", measure)
    return asked, gpus


def load(tmp_path, parts, force=False):
    return ceilings.load_or_measure("fp", 2, {}, force=force, cache_dir=tmp_path, parts=parts)


def test_each_part_is_measured_once_when_first_needed(tmp_path, fake_measure):
    asked, _ = fake_measure
    gpu_run = load(tmp_path, ("cuda",))
    assert asked == [("cuda",)] and "cpu" not in gpu_run
    assert gpu_run["cached"] is None and gpu_run["measured_now"] == ["cuda"]

    cpu_run = load(tmp_path, ("cpu",))  # the CPU measured now, the GPUs kept from the file
    assert asked == [("cuda",), ("cpu",)]
    assert cpu_run["cpu"]["copy_gbps"] == 42.0 and cpu_run["cuda:1"]["copy_gbps"] == 3001.0
    assert cpu_run["cached"] == str(ceilings.cache_path("fp", 2, tmp_path))
    assert cpu_run["measured_now"] == ["cpu"]

    both = load(tmp_path, ("cpu", "cuda"))  # all held: nothing measured
    assert len(asked) == 2 and both["parts"] == ["cpu", "cuda"] and "measured_now" not in both
    stored = json.loads(ceilings.cache_path("fp", 2, tmp_path).read_text())
    assert "cached" not in stored and "measured_now" not in stored


def test_force_measures_only_the_runs_parts_and_drops_a_gone_gpu(tmp_path, fake_measure):
    asked, gpus = fake_measure
    load(tmp_path, ("cpu", "cuda"))
    gpus.remove("cuda:1")  # the machine lost a GPU since
    again = load(tmp_path, ("cuda",), force=True)
    assert asked == [("cpu", "cuda"), ("cuda",)]
    assert "cuda:1" not in again and again["cuda:0"]["copy_gbps"] == 3002.0
    assert again["cpu"]["copy_gbps"] == 41.0  # kept as measured first


def test_a_file_from_before_parts_holds_every_part(tmp_path, fake_measure):
    asked, _ = fake_measure
    ceilings.cache_path("fp", 2, tmp_path).write_text(json.dumps(
        {"cpu": {"copy_gbps": 40.0}, "measured": "2026-11-01T10:00:00+0000"}))
    data = load(tmp_path, ("cpu", "cuda"))
    assert asked == [] and data["cpu"]["copy_gbps"] == 40.0
    assert "measured 2026-11-01T10:00:00+0000 (" in ceilings.describe(data)


def test_a_torn_cache_is_measured_again(tmp_path, fake_measure):
    asked, _ = fake_measure
    ceilings.cache_path("fp", 2, tmp_path).write_text('{"cpu": {"copy_gb')
    assert load(tmp_path, ("cpu",))["cpu"]["copy_gbps"] == 41.0 and asked == [("cpu",)]


def test_describe_says_which_parts_are_fresh_and_when_the_rest_were_measured(tmp_path,
                                                                            fake_measure):
    assert ceilings.describe(load(tmp_path, ("cuda",))).startswith(
        "cuda:0 (H100) copy 3001 GB/s; cuda:1 (H100) copy 3001 GB/s, measured now")
    line = ceilings.describe(load(tmp_path, ("cpu",)))
    assert "; cpu measured now, cuda from " in line and "cuda:0 (H100) copy 3001 GB/s" in line
    assert line.endswith("t2.json, measured T1 (--calibrate force measures again)")
    line = ceilings.describe(load(tmp_path, ("cpu", "cuda")))
    assert "measured T1 to T2" in line and "measured now" not in line
    assert ceilings.describe({"parts": ["cuda"], "cached": None}) == "no figures, measured now"


def test_measuring_the_gpus_alone_leaves_the_cpu_alone(monkeypatch):
    def refuse(threads):
        raise AssertionError("measured the CPU for a GPU-only run")

    monkeypatch.setattr(ceilings, "measure_cpu", refuse)
    got = ceilings.measure(2, ("cuda",))
    assert got["parts"] == ["cuda"] and "cpu" not in got  # this machine: no GPU found
    assert not any(k.startswith("cuda:") for k in got)


def test_the_ceilings_process_refuses_an_unknown_part():
    out = subprocess.run([sys.executable, "-m", "kernbench.ceilings", "1", "--parts", "tpu"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode != 0 and "unknown parts ['tpu']" in out.stderr


def test_a_cuda_suite_calibrates_only_the_gpus(tmp_path, monkeypatch, capsys):
    """`kernbench run` asks for the parts its cases' devices need."""
    asked = []

    class Stop(Exception):
        pass

    def calibrate(fingerprint, threads, env, force=False, cache_dir=None,
                  parts=ceilings.PARTS, on_measure=None):
        asked.append(parts)
        on_measure(parts)
        raise Stop

    monkeypatch.setattr(ceilings, "load_or_measure", calibrate)
    for devices, want in (('["cuda"]', ("cuda",)), ('["cpu", "cuda:0"]', ("cpu", "cuda")),
                          ('["cpu"]', ("cpu",))):
        suite = tmp_path / "s.toml"
        suite.write_text(f'[suite]\nbackends = ["torch_eager"]\ndtypes = ["float32"]\n'
                         f'devices = {devices}\n[kernels.softmax]\n'
                         f'params = {{ rows = [4], cols = [8] }}\n')
        with pytest.raises(Stop):
            main(["run", str(suite), "-o", str(tmp_path / "r.jsonl"), "--isolate", "none",
                  "--no-progress"])
        assert asked[-1] == want
    assert "measuring this machine's ceilings (cuda; under a minute)" in capsys.readouterr().err
