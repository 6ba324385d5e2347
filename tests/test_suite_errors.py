"""Bad input: one line naming the file and key, with the allowed values, and exit code 2."""

import pytest

from kernbench.cli import main

from .conftest import ROOT

BASE = """
[suite]
backends = ["numpy"]
dtypes = ["float32"]
[kernels.softmax]
params = { rows = [4], cols = [8] }
"""


@pytest.mark.parametrize("text, expected", [
    (BASE.replace("softmax]", "sofmax]"), "unknown kernel 'sofmax' (did you mean 'softmax'?)"),
    (BASE.replace('["numpy"]', '["nunpy"]'), "unknown backend 'nunpy' (did you mean 'numpy'?)"),
    (BASE.replace('["float32"]', '["float33"]'), "unknown dtype 'float33'"),
    (BASE.replace("[suite]", '[suite]\ndevices = ["tpu"]'), "unknown device 'tpu'"),
    (BASE.replace("rows = [4]", "rowz = [4]"), "unknown softmax parameter 'rowz'"),
    (BASE.replace("rows = [4]", "rows = [0]"), "rows must be at least 1"),
    (BASE.replace("rows = [4]", 'rows = ["4"]'), "expected int"),
    (BASE.replace("[suite]", "[suite]\nbudget = 1"), "unknown key 'budget'"),
    (BASE.replace("[suite]", '[suite]\nbudget_s = "long"'), "budget_s: expected a number"),
    (BASE + "\n[[oops", "not valid TOML"),
    ("[suite]\n", "no kernels listed"),
])
def test_bad_suite(tmp_path, capsys, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code = main(["run", str(path), "--calibrate", "skip", "-o", str(tmp_path / "r.jsonl")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err
    assert str(path) in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.parametrize("args, expected", [
    (["--kernel", "softmaxx"], "unknown kernel 'softmaxx'"),
    (["--backend", "tensorflow"], "unknown backend 'tensorflow'"),
    (["--dtype", "int8"], "unknown dtype 'int8'"),
    (["--isolate", "thread"], "unknown mode 'thread'"),
    (["--kernels", "/nonexistent/dir"], "no such directory"),
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--mode", "inference"], "unknown mode 'inference'"),
    (["--threads", "0", "--dry-run"], "--threads: must be at least 1, got 0"),
    (["--memory-limit", "0"], "must be a positive number of GiB, got 0"),
    (["--memory-limit", "-1"], "must be a positive number of GiB, got -1"),
    (["--memory-limit", "nan"], "must be a positive number of GiB, got nan"),
    (["--memory-limit", "4G"], "not a number of GiB: '4G'"),
])
def test_bad_filters(capsys, args, expected):
    code = main(["run", str(ROOT / "suites" / "smoke.toml"), "--calibrate", "skip", *args])
    assert code == 2
    assert expected in capsys.readouterr().err


def test_missing_suite_file(capsys):
    assert main(["run", "/nonexistent.toml"]) == 2
    assert "no such suite file" in capsys.readouterr().err


def test_unknown_command(capsys):
    assert main(["frobnicate"]) == 2


def test_kernels_from_reuses_another_suites_kernels(tmp_path, capsys):
    """`kernels_from` takes another file's [kernels] under this [suite]; this file's own
    [kernels.X] replaces the other's X; a missing file is a clean error."""
    from kernbench.discovery import discover
    from kernbench.suite import load_suite

    (tmp_path / "base.toml").write_text(
        '[suite]\nname = "base"\n[kernels.softmax]\nparams = { rows = [4], cols = [8] }\n'
        '[kernels.matmul]\ncases = [ { m = 2, n = 3, k = 4 } ]\n')
    (tmp_path / "derived.toml").write_text(
        '[suite]\nname = "derived"\nkernels_from = "base.toml"\nbackends = ["numpy"]\n'
        '[kernels.matmul]\ncases = [ { m = 5, n = 3, k = 4 } ]\n')
    suite = load_suite(tmp_path / "derived.toml", discover([]))
    assert suite.name == "derived"
    assert {(p.case.kernel, p.case.param_dict.get("rows"), p.case.param_dict.get("m"))
            for p in suite.cases} == {("softmax", 4, None), ("matmul", None, 5)}
    (tmp_path / "broken.toml").write_text('[suite]\nkernels_from = "nope.toml"\n')
    assert main(["run", str(tmp_path / "broken.toml"), "--dry-run"]) == 2
    assert "kernels_from" in capsys.readouterr().err
