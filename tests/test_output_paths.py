"""Paths the user names for output, and files a command must never damage: a path that cannot
be written is a one-line usage error (exit 2) before any work; an output that is also an input,
a folder, or a file that is not a results file is left exactly as it was."""

import json
from pathlib import Path

import pytest

from kernbench import ceilings as ceilings_mod
from kernbench.cli import main
from kernbench.errors import UsageError
from kernbench.paths import keep_previous, writable_file, writable_folder
from kernbench.results import SCHEMA, RunWriter
from kernbench.run import RunOptions, resumed_settings

from .conftest import ROOT, case_record

SUITE = """
[suite]
backends = ["numpy"]
dtypes = ["float32"]
[kernels.softmax]
params = { rows = [4], cols = [8, 16] }
"""
QUICK = ["--calibrate", "skip", "--isolate", "none", "--no-progress"]


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(SUITE)
    return path


def results_file(path: Path, n_cases: int = 1, threads: int = 2) -> Path:
    header = {"type": "run", "schema": SCHEMA, "run_id": "r1", "suite": "tiny",
              "fingerprint": "f" * 12, "settings": {"threads": threads, "isolate": "none"}}
    with RunWriter(path, header) as w:
        for i in range(n_cases):
            w.write(case_record(f"softmax/numpy/cpu/float32/forward/rows=4,cols={i}",
                                [1e-3] * 3))
    return path


def one_line_error(capsys, code: int, expected: str) -> None:
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


# -- run -------------------------------------------------------------------------------------------
def test_run_refuses_a_folder_as_output_and_leaves_it(tmp_path, suite, capsys):
    folder = tmp_path / "out"
    (folder / "keep").mkdir(parents=True)
    code = main(["run", str(suite), "-o", str(folder), *QUICK])
    one_line_error(capsys, code, "is a folder")
    assert (folder / "keep").is_dir() and list(tmp_path.glob("out-replaced-*")) == []


def test_run_checks_its_output_before_calibrating(tmp_path, suite, capsys, monkeypatch):
    """A path under a file fails at once, not after the ceilings are measured."""
    def calibrate(*args, **kwargs):
        raise AssertionError("calibrated before checking -o")

    monkeypatch.setattr(ceilings_mod, "load_or_measure", calibrate)
    (tmp_path / "file").write_text("x")
    code = main(["run", str(suite), "-o", str(tmp_path / "file" / "r.jsonl"),
                 "--calibrate", "force", "--no-progress"])
    one_line_error(capsys, code, "is a file, not a folder")


def test_resume_never_touches_a_file_that_is_not_a_results_file(tmp_path, suite, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("line one\nno newline at the end")
    before = notes.read_bytes()
    code = main(["run", str(suite), "--resume", str(notes), *QUICK])
    one_line_error(capsys, code, "not a kernbench results file")
    assert notes.read_bytes() == before


def test_resume_of_another_suite_keeps_its_partial_line(tmp_path, suite, capsys):
    other = results_file(tmp_path / "other.jsonl")
    text = json.loads(other.read_text().splitlines()[0])
    other.write_text(json.dumps({**text, "suite": "another"}) + "\n" + '{"type": "ca')
    before = other.read_bytes()
    code = main(["run", str(suite), "--resume", str(other), *QUICK])
    # one line: no "dropping a partial last line" warning for a line that is kept
    one_line_error(capsys, code, "not 'tiny'")
    assert other.read_bytes() == before  # refused after reading: the repair happens only later


def test_resume_refuses_other_settings_and_another_output(tmp_path, suite, capsys):
    path = results_file(tmp_path / "r.jsonl", threads=2)
    before = path.read_bytes()
    code = main(["run", str(suite), "--resume", str(path), "--threads", "1", *QUICK])
    one_line_error(capsys, code, "the run used threads 2; --threads 1 would mix")
    code = main(["run", str(suite), "--resume", str(path), "-o", str(tmp_path / "x.jsonl"),
                 *QUICK])
    one_line_error(capsys, code, "appends to that file")
    assert path.read_bytes() == before


def test_resume_takes_the_recorded_settings_when_left_out():
    recorded = {"threads": 3, "isolate": "case", "allocator": "", "memory_limit": 2**30}
    settings = resumed_settings(RunOptions(suite="s"), recorded, Path("r.jsonl"))
    assert (settings.threads, settings.isolate, settings.allocator, settings.memory_limit) == (
        3, "case", "", 2**30)
    same = resumed_settings(RunOptions(suite="s", threads=3, isolate="case"), recorded,
                            Path("r.jsonl"))
    assert same.threads == 3
    with pytest.raises(UsageError, match="memory_limit"):
        resumed_settings(RunOptions(suite="s", memory_limit=2**31), recorded, Path("r.jsonl"))


def test_resumed_run_appends_under_the_recorded_header(tmp_path, suite, capsys):
    out = tmp_path / "r.jsonl"
    assert main(["run", str(suite), "-o", str(out), "--threads", "1", "--mode", "forward",
                 *QUICK]) == 0
    lines = out.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["settings"]["threads"] == 1 and header["settings"]["isolate"] == "none"
    assert "memory_limit" in header["settings"]
    assert header["settings"]["filters"]["mode"] == ["forward"]
    assert header["settings"]["filters"]["case"] == []
    # as if killed while writing the second case
    out.write_text("\n".join(lines[:2]) + "\n" + lines[2][:20])
    capsys.readouterr()
    assert main(["run", str(suite), "--resume", str(out), "--calibrate", "skip",
                 "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"kernbench: warning: {out}: cut a partial last line (20 bytes)" in err, err
    assert "dropping" not in err, err
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()[1:]]
    assert len(ids) == len(set(ids)) == 2


# -- report, export, merge, gate, baseline ---------------------------------------------------------
@pytest.mark.parametrize("command", [
    ["report", "{r}", "-o", "{r}", "--no-plots"],
    ["export", "{r}", "-o", "{r}"],
    ["gate", "--current", "{r}", "--baseline", "{r}", "--markdown", "{r}"],
    ["gate", "--current", "{other}", "--baseline", "{r}", "--markdown", "{r}"],  # the baseline
    ["gate", "--current", "{other}", "--baseline", "{folder}", "--markdown", "{r}"],  # found one
])
def test_an_output_that_is_also_the_input_is_refused(tmp_path, capsys, command):
    path = results_file(tmp_path / "r.jsonl")
    other = results_file(tmp_path / "other.jsonl")
    folder = tmp_path / "baselines"
    (folder / ("f" * 12)).mkdir(parents=True)
    (folder / ("f" * 12) / "tiny.jsonl").symlink_to(path)  # <fingerprint>/<suite>.jsonl
    before = path.read_bytes()
    code = main([part.format(r=path, other=other, folder=folder) for part in command])
    one_line_error(capsys, code, "is also an input")
    assert path.read_bytes() == before


@pytest.mark.parametrize("command", [
    ["run", "{suite}", "-o", "{suite}", *QUICK],
    ["ab", "{suite}", "--base-kernels", "{kernels}", "--markdown", "{suite}", "--no-progress"],
    ["ab", "{suite}", "--base-kernels", "{kernels}", "-o", "{ab}", "--markdown", "{ab}/head.jsonl",
     "--no-progress"],
])
def test_the_suite_and_abs_results_are_inputs_too(tmp_path, suite, capsys, command):
    """run -o and ab --markdown naming the suite file, or ab --markdown naming a results file
    ab is about to write, are refused before anything runs."""
    before = suite.read_bytes()
    kernels = ROOT / "kernels"
    code = main([part.format(suite=suite, kernels=kernels, ab=tmp_path / "ab")
                 for part in command])
    one_line_error(capsys, code, "is also an input")
    assert suite.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.toml"]


@pytest.mark.parametrize("command", [
    ["report", "{r}", "-o", "{bad}", "--no-plots"],
    ["export", "{r}", "-o", "{bad}"],
    ["merge", "{r}", "{r2}", "-o", "{bad}"],
    ["gate", "--current", "{r}", "--baseline", "{r2}", "--markdown", "{bad}"],
    ["baseline", "save", "{r}", "--root", "{blocker}"],
])
def test_unwritable_outputs_are_usage_errors(tmp_path, capsys, command):
    r, r2 = results_file(tmp_path / "r.jsonl"), results_file(tmp_path / "r2.jsonl")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder is needed")
    code = main([part.format(r=r, r2=r2, bad=blocker / "out", blocker=blocker)
                 for part in command])
    one_line_error(capsys, code, "is a file, not a folder")


def test_report_into_a_folder_is_refused(tmp_path, capsys):
    path = results_file(tmp_path / "r.jsonl")
    code = main(["report", str(path), "-o", str(tmp_path), "--no-plots"])
    one_line_error(capsys, code, "is a folder")


def test_saving_the_stored_baseline_onto_itself_is_refused(tmp_path, capsys):
    root = tmp_path / "baselines"
    stored = main(["baseline", "save", str(results_file(tmp_path / "r.jsonl")),
                   "--root", str(root)])
    assert stored == 0
    target = root / ("f" * 12) / "tiny.jsonl"
    capsys.readouterr()
    code = main(["baseline", "save", str(target), "--root", str(root)])
    one_line_error(capsys, code, "is already the stored baseline")
    assert target.is_file()


@pytest.mark.parametrize("command, expected", [
    (["calibrate", "--threads", "-1"], "must be at least 1, got -1"),
    (["calibrate", "--threads", "0"], "must be at least 1, got 0"),
    (["ab", "s.toml", "--base", "HEAD", "--threads", "0"], "must be at least 1, got 0"),
    (["profile", "x/numpy/cpu/float32/forward/n=1", "--timeout", "-1"],
     "must be a positive number of seconds, got -1"),
    (["profile", "x/numpy/cpu/float32/forward/n=1", "--timeout", "inf"],
     "must be a positive number of seconds, got inf"),
    (["profile", "x/numpy/cpu/float32/forward/n=1", "--calls", "0"], "must be at least 1"),
])
def test_counts_and_durations_must_be_positive(capsys, command, expected):
    one_line_error(capsys, main(command), expected)


# -- the helpers themselves ------------------------------------------------------------------------
def test_keep_previous_moves_a_file_aside(tmp_path):
    path = tmp_path / "base.jsonl"
    assert keep_previous(path) is None
    path.write_text("earlier A/B run")
    kept = keep_previous(path)
    assert not path.exists() and kept.read_text() == "earlier A/B run"
    assert kept.name.startswith("base-replaced-") and kept.suffix == ".jsonl"


def test_writable_file_leaves_no_trace(tmp_path):
    out = writable_file(tmp_path / "new" / "r.jsonl", "-o")
    assert not out.parent.exists()  # the writer makes the folder, when it writes
    assert writable_folder(tmp_path / "a" / "b", "-o") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()
    existing = tmp_path / "old.jsonl"
    existing.write_text("kept")
    writable_file(existing, "-o")
    assert existing.read_text() == "kept"
    with pytest.raises(UsageError, match="is a file, not a folder"):
        writable_folder(existing, "-o")


def test_profile_into_a_file_is_refused_before_profiling(tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    code = main(["profile", "softmax/numpy/cpu/float32/forward/rows=4,cols=8",
                 "-o", str(blocker / "profiles")])
    one_line_error(capsys, code, "is a file, not a folder")


def test_a_command_refused_after_its_output_check_leaves_no_folder(tmp_path, capsys):
    """The output is checked first, and the folder is made only when the command writes: a
    report of a file that is not a results file fails after the check and leaves nothing."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not a results file\n")
    code = main(["report", str(bad), "-o", str(tmp_path / "new" / "deeper" / "r.html"),
                 "--no-plots"])
    assert code == 2, capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    good = results_file(tmp_path / "r.jsonl")
    out = tmp_path / "made" / "deeper" / "r.html"
    assert main(["report", str(good), "-o", str(out), "--no-plots"]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
