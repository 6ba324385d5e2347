"""The results file: written line by line, read back strictly, loaded into pandas."""

import json

import pytest

from kernbench.errors import UsageError
from kernbench.results import SCHEMA, RunWriter, cut_partial_line, load, read_run

from .conftest import case_record

HEADER = {"type": "run", "schema": SCHEMA, "run_id": "r1", "suite": "t"}


def case(i, status="ok"):
    return case_record(f"k/numpy/cpu/float32/forward/n={i}", [1.0, 2.0, 3.0], status,
                       memory={"peak_bytes": 10, "method": "tracemalloc"})


def test_round_trip_and_dataframe(tmp_path):
    path = tmp_path / "r.jsonl"
    with RunWriter(path, HEADER) as w:
        w.write(case(1))
        w.write(case(2, "failed"))
    run = read_run(path)
    assert run.header["run_id"] == "r1" and len(run.cases) == 2
    df = load(path)
    assert list(df["status"]) == ["ok", "failed"]
    assert list(df["median_s"]) == [2.0, 2.0]
    assert df.attrs["run"]["suite"] == "t"


def test_partial_last_line_is_dropped_with_warning(tmp_path):
    path = tmp_path / "r.jsonl"
    with RunWriter(path, HEADER) as w:
        w.write(case(1))
    with open(path, "a") as f:
        f.write(json.dumps(case(2))[:40])
    with pytest.warns(UserWarning, match="partial last line"):
        run = read_run(path)
    cut_partial_line(path)
    assert len(run.cases) == 1
    assert path.read_text().endswith("\n")
    assert len(read_run(path).cases) == 1  # repaired: no warning now


@pytest.mark.parametrize("content, message", [
    ("hello\n", "not a kernbench results file"),
    ('{"type": "case", "id": "x", "status": "ok"}\n', "no run header"),
    ('{"a": 1}\n', "not a kernbench results file"),
    (json.dumps({**HEADER, "schema": SCHEMA + 1}) + "\n", "newer"),
    ("", "empty results file"),
    (json.dumps(HEADER)[:30], "no complete run header"),
    (json.dumps(HEADER) + "\n" + json.dumps({**HEADER, "schema": 99}) + "\n",
     "a second run header"),
    (json.dumps(HEADER) + "\n" + json.dumps({**case(1), "id": ["a"]}) + "\n",
     "without a string id"),
    (json.dumps(HEADER) + "\n" + json.dumps({**case(1), "time": 5}) + "\n",
     "field 'time' is int, not an object"),
    (json.dumps(HEADER) + "\n" + json.dumps({**case(1), "flags": "suspect"}) + "\n",
     "field 'flags' is str, not a list"),
    (json.dumps({**HEADER, "settings": "x"}) + "\n", "run header: field 'settings' is str"),
    (json.dumps({**HEADER, "ab": "x"}) + "\n", "run header: field 'ab' is str"),
])
def test_foreign_files_are_rejected(tmp_path, content, message):
    path = tmp_path / "r.jsonl"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        read_run(path)


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(HEADER) + "\n")

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(path), "read_bytes", denied)
    with pytest.raises(UsageError, match="cannot read: Permission denied"):
        read_run(path)


def test_cli_prints_the_partial_line_warning_as_one_line(tmp_path, capsys):
    from kernbench.cli import main

    path = tmp_path / "r.jsonl"
    with RunWriter(path, HEADER) as w:
        w.write(case(1))
    with open(path, "a") as f:
        f.write('{"type": "ca')
    assert main(["show", str(path)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"kernbench: warning: {path}: dropping a partial last line"), err
    assert not any("UserWarning" in line for line in err)


def test_missing_file():
    with pytest.raises(UsageError, match="no such results file"):
        read_run("/nonexistent.jsonl")


def test_header_records_every_familys_framework(monkeypatch):
    """A family's `distributions` reach the header and the fingerprint with no second list."""
    from importlib import metadata

    from kernbench import environment
    from kernbench.backends import FAMILIES

    declared = {d for family in FAMILIES.values() for d in family.distributions}
    assert declared <= set(environment.DISTRIBUTIONS)
    # a framework's version change must change the fingerprint (runs on it are not comparable)
    real = metadata.version
    soft = environment.software()
    assert soft["numpy"] == real("numpy")
    monkeypatch.setattr(metadata, "version",
                        lambda d: "0.0.0" if d == "numpy" else real(d))
    bumped = environment.software()
    mach = environment.machine()
    assert environment.fingerprint(mach, soft) != environment.fingerprint(mach, bumped)
