"""The bad-input battery (tests/bad_inputs/cases.yaml): each case exits 2 with one line and loses nothing.

A case is a command line run in its own folder, with the files it names
written there first. Every case must end with exit code 2, exactly one line on
stderr holding each expected fragment, no traceback, and no results folder
outside a folder marked failed by its manifest; the command runs in the
case's folder, so that default output folders are checked too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from mcalloc.cli.main import main

from .conftest import DEFAULT_CONFIG, ROOT, one_error_line

CASES: list[dict[str, Any]] = yaml.safe_load((ROOT / "tests" / "bad_inputs" / "cases.yaml").read_text(encoding="utf-8"))

FIT = """extends: {root}/configs/examples/fit_etfs.yaml
name: synthetic
data:
  start: null
  end: null
  paths: {{sp500: {here}/a.csv, russell2000: {here}/b.csv, intl: {here}/c.csv}}
simulation: {{n_paths: 200, chunk_size: 100}}
output: {{dir: {here}/results, report: false, calibration: {{n_paths: 0}}}}
optimize: {{objectives: []}}
"""


def _fill(text: str, here: Path) -> str:
    values = {
        "root": str(ROOT),
        "default": str(DEFAULT_CONFIG),
        "here": str(here),
        "fit": FIT.format(root=ROOT, here=here),
        "long": "x" * 300,
        "big": "# " + "padding " * 140_000 + "\n",
    }
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def _prices(spec: dict[str, Any], here: Path) -> str:
    if "copy_of" in spec:
        return (here / spec["copy_of"]).read_text(encoding="utf-8")
    n = int(spec["n"])
    rng = np.random.default_rng(int(spec["seed"]))
    dates = pd.bdate_range("2001-01-02", periods=n)
    steps = np.zeros(n) if spec.get("constant") else rng.normal(0.0003, 0.012, n)
    prices = 100.0 * np.exp(np.cumsum(steps))
    return pd.DataFrame({"Date": dates.strftime("%Y-%m-%d"), "Close": prices}).to_csv(index=False)


def _write(name: str, spec: dict[str, Any], here: Path) -> None:
    path = here / name
    path.parent.mkdir(parents=True, exist_ok=True)  # a name with a / makes its folders
    if "hex" in spec:
        path.write_bytes(bytes.fromhex(spec["hex"]))
    elif "prices" in spec:
        path.write_text(_prices(spec["prices"], here), encoding="utf-8")
    else:
        path.write_text(_fill(spec["text"], here), encoding="utf-8")


def test_the_battery_is_large_and_named_uniquely() -> None:
    assert len(CASES) >= 60
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids))
    assert all(case.get("expect") for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_input_exits_2_with_one_line_and_nothing_complete(
    case: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "case"
    here.mkdir()
    # run inside the case's folder, so that a default output folder (results/) lands where it is checked
    monkeypatch.chdir(here)
    for name, spec in (case.get("files") or {}).items():
        _write(name, spec, here)
    before = set(here.rglob("*"))
    # and loses nothing: every file the case wrote (its scenario, its data, a results folder's manifest) is as it was
    contents = {path: path.read_bytes() for path in before if path.is_file()}
    argv = [_fill(str(part), here) for part in case["argv"]]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, (case["id"], captured.err)
    one_error_line(captured, tuple(case["expect"]))
    assert not [fragment for fragment in case.get("absent", ()) if fragment in captured.err], captured.err
    assert [path for path, content in contents.items() if path.read_bytes() != content] == [], case["id"]
    # whatever the command wrote lies in a folder marked failed, with a manifest saying so: nothing
    # half-written (a .partial, a folder without its manifest) can pass for a result
    for path in set(here.rglob("*")) - before:
        if path.is_file():
            marked = [parent for parent in path.relative_to(here).parents if parent.name.endswith(".failed")]
            assert marked, (case["id"], path)
            manifest = here / marked[0] / "manifest.json"
            assert json.loads(manifest.read_text(encoding="utf-8"))["status"] == "failed", manifest
