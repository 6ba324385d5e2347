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
    (["--kernels", "{missing}"], "no such directory"),  # a tmp_path's child: surely absent
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--device", "cuda"], "--device cuda: no planned case has it (the cases left plan: cpu)"),
    (["--kernel", "matmul", "--backend", "numba_cuda"],
     "--backend numba_cuda: no planned case has it (the cases left plan: jax_jit, numba, "),
    (["--mode", "inference"], "unknown mode 'inference'"),
    (["--threads", "0", "--dry-run"], "--threads: must be at least 1, got 0"),
    (["--memory-limit", "0"], "must be a positive number of GiB, got 0"),
    (["--memory-limit", "-1"], "must be a positive number of GiB, got -1"),
    (["--memory-limit", "nan"], "must be a positive number of GiB, got nan"),
    (["--memory-limit", "4G"], "not a number of GiB: '4G'"),
    (["--case", "softmax/*/rows=640,cols=*"],
     "--case softmax/*/rows=640,cols=*: matches none of the "),
    (["--kernel", "matmul", "--case", "softmax/*"], "--case softmax/*: matches none of the "),
])
def test_bad_filters(tmp_path, capsys, args, expected):
    args = [a.replace("{missing}", str(tmp_path / "missing")) for a in args]
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


@pytest.mark.parametrize("files, expected", [
    # the other file's [kernels] is not a table
    ({"bad.toml": '[suite]\nkernels_from = "other.toml"\n', "other.toml": "kernels = 5\n"},
     "bad.toml: [suite] kernels_from: {tmp}/other.toml: [kernels]: expected a table, got int"),
    # this file's own [kernels] is not a table, beside a good kernels_from
    ({"bad.toml": 'kernels = 5\n[suite]\nkernels_from = "other.toml"\n',
      "other.toml": "[kernels.softmax]\nparams = { rows = [4], cols = [8] }\n"},
     "bad.toml: [kernels]: expected a table, got int"),
    # without kernels_from
    ({"bad.toml": 'kernels = [1]\n[suite]\nbackends = ["numpy"]\n'},
     "bad.toml: [kernels]: expected a table, got list"),
])
def test_kernels_must_be_a_table(tmp_path, capsys, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert main(["run", str(tmp_path / "bad.toml"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert expected.format(tmp=tmp_path) in err, err
    assert len(err.strip().splitlines()) == 1


def test_unreadable_suite_file(tmp_path, capsys, monkeypatch):
    """A file that exists but cannot be read (permissions, a directory) is a UsageError naming
    it, not a traceback; also when it is another suite's kernels_from."""
    from pathlib import Path

    (tmp_path / "dir.toml").mkdir()
    assert main(["run", str(tmp_path / "dir.toml"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'dir.toml'}: cannot read: Is a directory" in err, err

    (tmp_path / "locked.toml").write_text(BASE)
    (tmp_path / "derived.toml").write_text('[suite]\nkernels_from = "locked.toml"\n')
    real = Path.read_text

    def read_text(self, *args, **kwargs):
        if self.name == "locked.toml":  # chmod 000 does not stop root: raise what it would
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    for name in ("locked.toml", "derived.toml"):
        assert main(["run", str(tmp_path / name), "--dry-run"]) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path / 'locked.toml'}: cannot read: Permission denied" in err, err
        assert str(tmp_path / name) in err and len(err.strip().splitlines()) == 1


def _with(settings: str) -> str:
    return BASE.replace("[suite]", f"[suite]\n{settings}")


@pytest.mark.parametrize("settings, expected", [
    ("timeout_s = inf", "timeout_s: expected a finite number, got inf"),
    ("timeout_s = nan", "timeout_s: expected a finite number, got nan"),
    ("budget_s = inf", "budget_s: expected a finite number, got inf"),
    ("warmup_s = -inf", "warmup_s: expected a finite number, got -inf"),
    ("min_block_s = nan", "min_block_s: expected a finite number, got nan"),
    ("timeout_s = 0", "timeout_s: must be greater than 0, got 0.0"),
    ("timeout_s = 1e7", "timeout_s: must be at most 1e+06 s"),
    ("max_samples = 0", "max_samples: must be greater than 0, got 0"),
    ("min_samples = -1", "min_samples: must not be negative, got -1"),
    ("budget_s = -0.5", "budget_s: must not be negative, got -0.5"),
    ("min_samples = 50\nmax_samples = 3",
     "min_samples and max_samples: min_samples (50) must not exceed max_samples (3)"),
    ("max_samples = 3", "max_samples: min_samples (5) must not exceed max_samples (3)"),
    ("min_samples = 501", "min_samples: min_samples (501) must not exceed max_samples (500)"),
])
def test_bad_settings(tmp_path, capsys, settings, expected):
    # per kernel too: the same checks apply to a [kernels.X] override; each is named where it
    # was written, except a [suite] value that is wrong only against a default, which a kernel
    # could override (max_samples below min_samples' default): that is named where it applies
    against_default = "must not exceed" in expected and "\n" not in settings
    suite_table = "[kernels.softmax]" if against_default else "[suite]"
    for text, table in ((_with(settings), suite_table), (BASE + settings + "\n",
                                                          "[kernels.softmax]")):
        path = tmp_path / "bad.toml"
        path.write_text(text)
        assert main(["run", str(path), "--dry-run"]) == 2
        err = capsys.readouterr().err
        assert f"{path}: {table} {expected}" in err, err
        assert len(err.strip().splitlines()) == 1


def test_zero_settings_that_mean_something_load(tmp_path):
    """budget_s = 0 (take min_samples), warmup_s = 0, min_block_s = 0 (one call per block) and
    min_samples = max_samples are valid, as suites/simulated.toml uses them."""
    from kernbench.discovery import discover
    from kernbench.suite import load_suite

    path = tmp_path / "ok.toml"
    path.write_text(_with("budget_s = 0\nwarmup_s = 0\nmin_block_s = 0\nmin_samples = 2\n"
                          "max_samples = 2\ntimeout_s = 0.5"))
    (p,) = load_suite(path, discover([])).cases
    s = p.settings
    assert (s.budget_s, s.warmup_s, s.min_block_s, s.min_samples, s.max_samples,
            s.timeout_s) == (0.0, 0.0, 0.0, 2, 2, 0.5)


@pytest.mark.parametrize("line, expected", [
    ('dtypes = ["float33"]', "[suite] dtypes"),
    ('devices = ["tpu"]', "[suite] devices"),
    ('modes = ["fwd"]', "[suite] modes"),
    ('backends = ["nunpy"]', "[suite] backends"),
])
def test_suite_table_errors_name_the_suite_table(tmp_path, capsys, line, expected):
    """A wrong value in [suite] is named there, not under the first kernel that inherits it."""
    path = tmp_path / "bad.toml"
    path.write_text(f"[suite]\n{line}\n[kernels.softmax]\nparams = {{ rows = [4], cols = [8] }}\n"
                    "[kernels.matmul]\nparams = { m = [4], n = [4], k = [4] }\n")
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {expected}" in err and "kernels." not in err, err


def test_an_unknown_backend_filter_is_named_and_listed_once(capsys):
    code = main(["run", str(ROOT / "suites" / "smoke.toml"), "--dry-run", "--backend", "numpyy"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("kernbench: error: --backend: unknown backend 'numpyy'")
    allowed = err.split("allowed: ")[1].strip().split(", ")
    assert len(allowed) == len(set(allowed)) and "numpy" in allowed, err


def test_case_patterns_keep_the_ids_any_of_them_match(capsys):
    """`--case` is a shell-style pattern of the case id (`*` crosses `/`), repeatable: a case
    is kept when any pattern matches it."""
    code = main(["run", str(ROOT / "suites" / "smoke.toml"), "--dry-run",
                 "--case", "softmax/numpy/*/float32/forward/*",
                 "--case", "matmul/*/bfloat16/backward/*"])
    assert code == 0
    ids = capsys.readouterr().out.split()
    assert ids and all(i.startswith("softmax/numpy/cpu/float32/forward/")
                       or (i.startswith("matmul/") and "/bfloat16/backward/" in i) for i in ids)
    assert any(i.startswith("softmax/") for i in ids) and any(i.startswith("matmul/") for i in ids)
