"""report.html: written by `mcalloc run`, rebuilt by `mcalloc report`, self-contained, and rendered in Chromium.

The browser test drives Debian's headless Chromium through chromedriver
(selenium); `make test` installs both when it runs as root with apt. Where
neither can be found, that one test skips and says so.
"""

from __future__ import annotations

import html
import io
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import mcalloc
import numpy as np
import pytest
from mcalloc.cli.main import main

from .conftest import DEFAULT_CONFIG, ROOT, one_error_line

SECTIONS = [
    "answer", "summary", "wealth", "drawdowns", "diversification", "frontiers", "weights", "horizons", "models",
    "warnings",
]  # fmt: skip
FIGURES = ["fan", "drawdowns", "diversification", "frontier", "weights", "horizons", "correlation"]


class _Page(HTMLParser):
    """What the checks need from a page: section ids, image sources, every link or source address."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.addresses: list[str] = []
        self.figures: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if "id" in values:
            self.ids.append(values["id"])
        if tag == "section":
            self.sections.append(values.get("id", ""))
        if tag == "figure":
            self.figures.append(values.get("id", "").removeprefix("figure-"))
        if tag == "img":
            self.images.append(values.get("src", ""))
        for key in ("src", "href"):
            if key in values and not values[key].startswith("#"):
                self.addresses.append(values[key])


class _Tables(HTMLParser):
    """Every table's body rows, by the table's id: lists of cell texts; and its column headers."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.headers: dict[str, list[str]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id") or f"table-{len(self.tables)}"
            self.tables[self._table] = []
            self.headers[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table is not None and self._in_body:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "th" and self._cell is not None and self._table is not None and not self._in_body:
            self.headers[self._table].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tbody":
            self._in_body = False


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _not_blank(png: bytes) -> bool:
    """More than 2% of the pixels differ clearly from the background (white)."""
    from matplotlib.image import imread

    pixels = imread(io.BytesIO(png), format="png")[..., :3]
    return bool(np.mean(np.abs(pixels - 1.0).max(axis=2) > 0.1) > 0.02)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The default scenario with fewer paths, run as a user runs it: `python -m mcalloc run ... --out DIR`."""
    out = tmp_path_factory.mktemp("report") / "run"
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "mcalloc", "run", str(DEFAULT_CONFIG), "--out", str(out)),
            *("--set", "simulation.n_paths=1000", "--set", "optimize.n_paths=2000"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    yield out, completed.stdout


def test_run_ends_by_printing_the_report_and_writes_every_section(run_folder: tuple[Path, str]) -> None:
    out, stdout = run_folder
    assert stdout.rstrip().splitlines()[-1] == f"report: {out / 'report.html'}"
    page = _parse(out / "report.html")
    assert page.sections == SECTIONS
    # every id once: a table named as its section made the section's link ambiguous
    assert len(page.ids) == len(set(page.ids)), sorted(i for i in page.ids if page.ids.count(i) > 1)
    assert page.figures == FIGURES
    for name in FIGURES:
        assert _not_blank((out / "figures" / f"{name}.png").read_bytes()), name
        assert (out / "figures" / f"{name}.svg").read_text(encoding="utf-8").lstrip().startswith("<?xml")


def test_report_is_self_contained(run_folder: tuple[Path, str]) -> None:
    """Every image is embedded; nothing is fetched from anywhere (no URL, no file beside the page)."""
    page = _parse(run_folder[0] / "report.html")
    assert len(page.images) == len(FIGURES)
    assert all(source.startswith("data:image/png;base64,") for source in page.images)
    assert [address for address in page.addresses if not address.startswith("data:")] == []


def test_report_tables_show_the_numbers_of_the_csv_files(run_folder: tuple[Path, str]) -> None:
    # each difference in diversification.csv as the page shows it: percentage points of a rate or a share,
    # a percentage of a probability, the ratio or count itself; read back within the shown rounding
    import pandas as pd

    out = run_folder[0]
    tables = _Tables()
    tables.feed((out / "report.html").read_text(encoding="utf-8"))
    rows = tables.tables["diversification-table"]
    expected = pd.read_csv(out / "diversification.csv")
    assert len(rows) == len(expected) > 0
    for cells, (_, row) in zip(rows, expected.iterrows(), strict=True):
        assert cells[:3] == [row["portfolio"], row["currency"], row["statistic"]]
        if pd.isna(row["difference"]):  # P(wealthier) of a mix level with the reference on every path
            assert row["statistic"] == "prob_wealthier" and cells[3:5] == ["same mix", ""], cells
            continue
        shown = float(cells[3].rstrip("%"))
        if pd.isna(row["ci_low"]):  # a ratio, count or share of the mix: no interval, and no " .. " either
            assert cells[4] == "", cells
        if row["statistic"] == "prob_wealthier":
            assert shown / 100 == pytest.approx(row["difference"], abs=0.0005 + 1e-12), cells
        elif row["statistic"] in ("diversification_ratio", "effective_bets"):
            assert shown == pytest.approx(row["difference"], abs=0.0005 + 1e-12), cells
        else:
            assert shown / 100 == pytest.approx(row["difference"], abs=0.00005 + 1e-12), cells
    provenance = dict(tuple(cells) for cells in tables.tables["provenance"] if len(cells) == 2)
    assert "running" not in provenance["started / finished (UTC)"]
    assert provenance["account tax"] == "none (returns before tax)"
    # the headline table: each portfolio's row against metrics.csv, percentages to the shown 0.1 point
    metrics = pd.read_csv(out / "metrics.csv")
    shown_rows = tables.tables["metrics"]
    assert len(shown_rows) == len(metrics) > 0
    percents = ["cagr_median", "cagr_p05", "cagr_p95", "vol_ann", "maxdd_median", "maxdd_p95"]
    percents += ["cvar_95_annual", "prob_loss"]
    for cells, (_, row) in zip(shown_rows, metrics.iterrows(), strict=True):
        assert cells[:2] == [row["portfolio"], row["currency"]]
        for cell, column in zip(cells[2:10], percents, strict=True):
            assert float(cell.rstrip("%")) / 100 == pytest.approx(row[column], abs=0.0005 + 1e-12), (cells, column)
        assert cells[10] == f"{row['underwater_years_median']:.2f}", cells  # two decimals in every row
        assert float(cells[11].replace(",", "")) == pytest.approx(row["terminal_wealth_p50"], abs=0.5 + 1e-9), cells
    # and each portfolio's weights against weights.csv, in the assets' order
    weights = pd.read_csv(out / "weights.csv").pivot(index="portfolio", columns="asset", values="weight")
    assets = list(dict.fromkeys(pd.read_csv(out / "weights.csv")["asset"]))
    assert len(tables.tables["weights-table"]) == len(weights)
    # an optimised portfolio's weight is followed by its range over batches of paths, as stability.csv has it
    stability = pd.read_csv(out / "stability.csv").set_index(["portfolio", "asset"])
    ranged = 0
    for cells in tables.tables["weights-table"]:
        shown = [float(cell.split()[0].rstrip("%")) / 100 for cell in cells[1:]]
        np.testing.assert_allclose(shown, weights.loc[cells[0], assets], atol=0.0005 + 1e-12, err_msg=str(cells))
        for asset, cell in zip(assets, cells[1:], strict=True):
            if (cells[0], asset) in stability.index and pd.notna(stability.loc[(cells[0], asset), "batch_min"]):
                low, high = stability.loc[(cells[0], asset), ["batch_min", "batch_max"]]
                assert cell.split()[1] == f"({100 * low:.0f}..{100 * high:.0f})", (cells, asset)
                ranged += 1
            else:
                assert len(cell.split()) == 1, (cells, asset)
    assert ranged >= len(assets)  # at least one optimised portfolio, with every asset's range
    # the optimisation and holding-period tables: fractions of wealth and probabilities in percent, the rest as is
    fractions = ("maxdd_p95_fit", "maxdd_p95_new_paths", "prob_loss", "cagr_median", "cagr_p05")
    for table_id, file in (("optimization", "optimization.csv"), ("horizons-table", "horizons.csv")):
        frame = pd.read_csv(out / file)
        headers, shown_rows = tables.headers[table_id], tables.tables[table_id]
        assert len(shown_rows) == len(frame) > 0, table_id
        checked = 0
        for column in fractions:
            if column not in headers:
                continue
            index = headers.index(column)
            for cells, value in zip(shown_rows, frame[column], strict=True):
                if pd.isna(value):
                    assert cells[index] == "", (table_id, column, cells)
                    continue
                assert cells[index].endswith("%"), (table_id, column, cells)
                assert float(cells[index].rstrip("%")) / 100 == pytest.approx(value, abs=0.0005 + 1e-12), cells
                checked += 1
        assert checked >= len(frame), table_id


def test_a_savings_plan_shows_the_investors_money_in_the_terminal_and_the_report(
    run_folder: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # monthly savings into an ISK: the fund's CAGR and P(loss) say nothing about the money paid in, the
    # tax paid or the chance of ending below what was saved; both outputs show them, as metrics.csv has them
    import pandas as pd

    out = tmp_path / "savings"
    config = ROOT / "configs" / "examples" / "monthly_savings.yaml"
    small = ["--set", "simulation.n_paths=300", "--set", "simulation.horizon_years=3"]
    small += ["--set", "optimize.objectives=[]"]
    assert main(["run", str(config), "--out", str(out), *small]) == 0
    printed = capsys.readouterr().out
    assert "start 2,000 SEK" in printed and "the investor's money (SEK; taxes: isk" in printed
    metrics = pd.read_csv(out / "metrics.csv").set_index("portfolio")
    tables = _Tables()
    tables.feed((out / "report.html").read_text(encoding="utf-8"))
    rows = {cells[0]: cells for cells in tables.tables["money"]}
    assert set(rows) == set(metrics.index)
    # real wealth is deflated at the scenario's own inflation, and the page says at what rate
    page = " ".join((out / "report.html").read_text(encoding="utf-8").split())
    assert "the median wealth in today's money, deflated at 2.0% a year (<code>portfolio.inflation</code>)" in page
    # the page says which account was taxed, and how (the scenario's ISK: 2.55% + 1 point, 30%, SEK 300,000)
    provenance = dict(tuple(cells) for cells in tables.tables["provenance"] if len(cells) == 2)
    assert provenance["account tax"] == (
        "ISK: 30% of a standard income of 3.55% of the capital base above SEK 300,000; foreign withholding 15%"
    )
    for name, cells in rows.items():
        paid_in, taxes = float(cells[2].replace(",", "")), float(cells[6].replace(",", ""))
        assert paid_in == pytest.approx(metrics.loc[name, "invested_mean"], abs=0.5)
        # under the ISK's free amount, what is paid is the US tax withheld on dividends: never nothing
        assert taxes == pytest.approx(metrics.loc[name, "taxes_mean"], abs=0.5) and taxes > 0
        assert float(cells[4].rstrip("%")) / 100 == pytest.approx(metrics.loc[name, "prob_shortfall"], abs=5e-4)
        assert f"{metrics.loc[name, 'invested_mean']:,.0f}" in printed
    # the fan chart's paid-in line ends at what the books counted as paid in; without contributions it is absent
    from mcalloc.report.figures import fan_figure

    def paid_in_lines(folder: Path) -> list[np.ndarray]:
        figure = fan_figure(mcalloc.load(folder))
        assert figure is not None
        return [line.get_ydata() for panel in figure.axes for line in panel.lines if line.get_label() == "paid in"]

    lines = paid_in_lines(out)
    assert lines  # one per panel
    for values in lines:
        assert values[0] == pytest.approx(2000.0) and np.all(np.diff(values) >= 0)
        assert values[-1] == pytest.approx(metrics["invested_mean"].iloc[0], rel=1e-9)
    assert paid_in_lines(run_folder[0]) == []
    # a scenario without flows or taxes has no such table
    default = _Tables()
    default.feed((run_folder[0] / "report.html").read_text(encoding="utf-8"))
    assert "money" not in default.tables and "the investor's money" not in run_folder[1]


def test_report_command_draws_the_same_report_from_the_saved_results(
    run_folder: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(run_folder[0], copy)
    shutil.rmtree(copy / "figures")
    (copy / "report.html").unlink()
    assert main(["report", str(copy)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {copy / 'report.html'}"
    for name in FIGURES:
        for suffix in ("png", "svg"):
            original = (run_folder[0] / "figures" / f"{name}.{suffix}").read_bytes()
            assert (copy / "figures" / f"{name}.{suffix}").read_bytes() == original, f"{name}.{suffix}"
    assert _parse(copy / "report.html").images == _parse(run_folder[0] / "report.html").images


def test_a_report_stopped_half_way_leaves_the_earlier_report_and_figures(
    run_folder: tuple[Path, str], tmp_path: Path
) -> None:
    # the figures used to be replaced one by one: a Ctrl-C left new figures beside old ones, or without a page
    from mcalloc.errors import Terminated, request_stop
    from mcalloc.report.page import build_report

    copy = tmp_path / "copy"
    shutil.copytree(run_folder[0], copy)
    (copy / "figures" / "fan.png").write_bytes(b"earlier")
    (copy / "report.html").write_text("earlier", encoding="utf-8")
    names = sorted(path.name for path in (copy / "figures").iterdir())
    drawing = copy / ".figures.drawing"

    def stop_after_the_first_figure() -> None:
        for _ in range(60_000):
            if drawing.is_dir() and any(drawing.glob("*.png")):
                break
            time.sleep(0.002)
        request_stop(True)  # what SIGTERM's handler does

    stopper = threading.Thread(target=stop_after_the_first_figure, daemon=True)
    stopper.start()
    try:
        with pytest.raises(Terminated):
            build_report(copy)
    finally:
        stopper.join()
        request_stop(False)
    assert (copy / "figures" / "fan.png").read_bytes() == b"earlier"
    assert (copy / "report.html").read_text(encoding="utf-8") == "earlier"
    assert sorted(path.name for path in (copy / "figures").iterdir()) == names and not drawing.exists()
    # drawn to the end, it replaces them all
    build_report(copy)
    assert (copy / "figures" / "fan.png").read_bytes() == (run_folder[0] / "figures" / "fan.png").read_bytes()
    assert sorted(path.name for path in (copy / "figures").iterdir()) == names and not drawing.exists()


def test_report_command_refuses_a_folder_that_is_not_a_finished_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    one_error_line(capsys.readouterr(), (f"{tmp_path}: no manifest.json", "give the folder of an mcalloc run"))


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        ({"dependence": "fhs"}, ('dependence is "fhs", not a mapping', "run its scenario again")),
        ({"packages": ["numpy"]}, ("packages is", "not a mapping of packages to versions")),
        ({"data_window": "2001-2019"}, ('data_window is "2001-2019", not a mapping',)),
        ({"data_window": {"first_return": "2001-01-01"}}, ("data_window.last_return is null, not a date",)),
        ({"data": [1, 2]}, ("data[0] is 1, not a mapping",)),
        ({"kind": "backtest"}, ("validation.csv: missing, and every backtest folder has it", "run the backtest")),
        # another tool's manifest.json was taken for a run "None, not complete"
        ({"schema_version": None, "status": None, "name": "My App"}, ("not an mcalloc manifest",)),
    ],
)
def test_report_names_a_manifest_value_of_the_wrong_kind_in_one_line(
    run_folder: tuple[Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: dict[str, object],
    fragments: tuple[str, ...],
) -> None:
    # each was an unexpected error (AttributeError, KeyError, FileNotFoundError), exit 1 (a stop-53 hunt)
    copy = tmp_path / "copy"
    shutil.copytree(run_folder[0], copy)
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(edit)
    manifest = {key: value for key, value in manifest.items() if value is not None}
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    before = (copy / "report.html").read_bytes()
    assert main(["report", str(copy)]) == 2
    one_error_line(capsys.readouterr(), fragments)
    assert (copy / "report.html").read_bytes() == before


def test_report_refuses_a_backtest_that_did_not_finish(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a backtest stopped by a signal is moved aside as .failed with the files written so far; one interrupted
    # by a power cut stays .partial, perhaps before pits.csv: neither gets a page that looks like a result
    for status, files in (("failed", ("validation.csv", "verdicts.csv", "pits.csv")), ("running", ("validation.csv",))):
        folder = tmp_path / status
        folder.mkdir()
        manifest = {
            "kind": "backtest",
            "status": status,
            "error": "KeyboardInterrupt: stopped",
            "splits": ["2016-01-01"],
        }
        (folder / "manifest.json").write_text(json.dumps(manifest))
        for name in files:
            (folder / name).write_text("split,model\n2016-01-01,fhs/normal\n")
        assert main(["report", str(folder)]) == 2
        # a manifest still marked running names no process here (a power cut): it may or may not still run
        said = "the backtest is failed, not complete" if status == "failed" else "the backtest has not finished, and"
        one_error_line(capsys.readouterr(), (str(folder), said))
        assert not (folder / "report.html").exists()


def test_compare_draws_run_names_as_they_are(
    run_folder: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # matplotlib would read "$5 vs $10" as mathematics (and fail on it); the legend shows the name itself
    first, second = tmp_path / "cost_$5_vs_$10", tmp_path / "a_<b>&_€"
    shutil.copytree(run_folder[0], first)
    shutil.copytree(run_folder[0], second)
    assert main(["compare", str(first), str(second), "--out", str(tmp_path / "compared")]) == 0
    capsys.readouterr()
    assert _not_blank((tmp_path / "compared" / "figures" / "fans.png").read_bytes())
    page = (tmp_path / "compared" / "compare.html").read_text(encoding="utf-8")
    assert "cost_$5_vs_$10" in page
    # each run says what produced it: seed, paths, version and config, as a run's own page does
    manifest = json.loads((first / "manifest.json").read_text(encoding="utf-8"))
    produced = f"seed {manifest['seed']},\n{manifest['n_paths']:,} paths, mcalloc {manifest['engine_version']}"
    assert page.count(produced) == 2 and page.count(manifest["config_sha256"][:12]) == 2
    # the comparison's folder is not a run: report and compare say what it is
    for argv in (["report", str(tmp_path / "compared")], ["compare", str(first), str(tmp_path / "compared")]):
        assert main(argv) == 2
        one_error_line(
            capsys.readouterr(), (f"{tmp_path / 'compared'}: a comparison of runs, not a run", "give the run")
        )


@pytest.mark.parametrize("option", ["--out", "--csv"])
def test_compare_writes_nothing_into_a_compared_run(
    option: str, run_folder: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the comparison's figures/ has names of its own; written into a run's folder it would sit among (or
    # replace) the run's checksummed results
    first, second = tmp_path / "first", tmp_path / "second"
    shutil.copytree(run_folder[0], first)
    shutil.copytree(run_folder[0], second)
    before = {path: path.read_bytes() for path in first.rglob("*") if path.is_file()}
    target = first / "figures" if option == "--out" else first / "comparison.csv"
    assert main(["compare", str(first), str(second), option, str(target)]) == 2
    # --csv is refused with every output file inside a results folder (check_output_file), before the runs are read
    inside = "inside the run folder" if option == "--out" else f"inside the mcalloc folder {first}"
    one_error_line(capsys.readouterr(), (option, str(target), inside, "whose files are its results"))
    assert {path: path.read_bytes() for path in first.rglob("*") if path.is_file()} == before
    mcalloc.load(first)  # its checksums still hold


@pytest.mark.parametrize("where", ["missing-folder", "a-folder"])
def test_compare_csv_that_cannot_be_written_is_one_line(
    where: str, run_folder: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "nowhere" / "table.csv" if where == "missing-folder" else tmp_path
    out = run_folder[0]
    assert main(["compare", str(out), str(out), "--no-report", "--csv", str(target)]) == 2
    one_error_line(capsys.readouterr(), ("--csv", str(target)))


def test_compare_csv_never_replaces_a_batch_index_or_a_comparison_s_table(
    run_folder: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # compare --csv batch/index.csv replaced the batch's index with a comparison, exit 0 (a stop-53 hunt)
    import pandas as pd

    batch, compared = tmp_path / "batch", tmp_path / "compared"
    (batch / "runs").mkdir(parents=True)
    pd.DataFrame({"run": ["x"], "status": ["complete"], "folder": ["runs/x"]}).to_csv(batch / "index.csv", index=False)
    before = (batch / "index.csv").read_bytes()
    copy = tmp_path / "copy"
    shutil.copytree(run_folder[0], copy)
    runs = [str(run_folder[0]), str(copy)]
    assert main(["compare", *runs, "--out", str(compared)]) == 0
    capsys.readouterr()
    for target in (batch / "index.csv", compared / "table.csv"):
        assert main(["compare", *runs, "--no-report", "--csv", str(target)]) == 2
        one_error_line(capsys.readouterr(), (f"--csv {target}: inside the mcalloc folder", "give another --csv"))
    assert (batch / "index.csv").read_bytes() == before and not (compared / "table.csv").exists()
    # a run's folder given as --csv is refused with a file beside it as the example, not one inside it
    assert main(["compare", *runs, "--no-report", "--csv", str(copy)]) == 2
    one_error_line(capsys.readouterr(), (f"such as {tmp_path / 'comparison.csv'}",))


def test_report_shows_each_unpaired_interval_with_its_own_difference(run_folder: tuple[Path, str]) -> None:
    import pandas as pd

    tables = _Tables()
    tables.feed((run_folder[0] / "report.html").read_text(encoding="utf-8"))
    rows = tables.tables["diversification-table"]
    expected = pd.read_csv(run_folder[0] / "diversification.csv")
    for cells, (_, row) in zip(rows, expected.iterrows(), strict=True):
        if pd.isna(row["unpaired_difference"]):
            assert cells[5] == "", cells
            continue
        if row["statistic"] in ("prob_wealthier", "diversification_ratio", "effective_bets"):
            continue
        shown, interval = cells[5].split(" (", 1)
        assert float(shown) / 100 == pytest.approx(row["unpaired_difference"], abs=0.00005 + 1e-12), cells
        low, high = (float(part.strip().rstrip(")")) / 100 for part in interval.split(".."))
        assert low == pytest.approx(row["unpaired_ci_low"], abs=0.00005 + 1e-12), cells
        assert high == pytest.approx(row["unpaired_ci_high"], abs=0.00005 + 1e-12), cells


def test_a_cvar_share_too_small_to_share_says_so_where_a_number_would_be() -> None:
    import pandas as pd
    from mcalloc.report.tables import diversification_cells

    nan = float("nan")
    frame = pd.DataFrame(
        [
            ["hedged", "USD", "cvar_share:stocks", nan, 1.0, nan],
            ["hedged", "USD", "risk_share:stocks", -0.9, 1.0, -1.9],
            ["plain", "USD", "cvar_share:stocks", 0.8, 1.0, -0.2],
            ["beside_a_hedged_reference", "USD", "cvar_share:stocks", 0.8, nan, nan],
        ],
        columns=["portfolio", "currency", "statistic", "portfolio_value", "reference_value", "difference"],
    ).assign(ci_low=nan, ci_high=nan, unpaired_difference=nan, unpaired_ci_low=nan, unpaired_ci_high=nan)
    shown = [row[3] for row in diversification_cells(frame).rows]
    assert shown == [
        "none: this mix's tail holds too small a loss to share",
        "-190.00",
        "-20.00",
        "none: the reference's tail holds too small a loss to share",
    ]


def _browser() -> tuple[str, str]:
    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip(
            "no headless Chromium with chromedriver on this machine: install Debian's chromium and chromium-driver "
            "(make test does it when run as root with apt)"
        )
    return binary, driver


def _open_offline(binary: str, driver_path: str) -> object:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
        "--window-size=1200,900",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    # no network at all: the page must stand on its own
    driver.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
    return driver


def test_report_and_comparison_render_in_chromium_offline(run_folder: tuple[Path, str], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    binary, driver_path = _browser()
    out = run_folder[0]
    second = tmp_path / "again"
    shutil.copytree(out, second)
    assert main(["compare", str(out), str(second), "--out", str(tmp_path / "compared")]) == 0
    driver = _open_offline(binary, driver_path)
    try:
        for page, sections, n_figures in (
            (out / "report.html", SECTIONS, len(FIGURES)),
            (tmp_path / "compared" / "compare.html", ["runs", "figures", "table"], 2),
        ):
            driver.get(page.as_uri())  # type: ignore[attr-defined]
            found = [s.get_attribute("id") for s in driver.find_elements(By.TAG_NAME, "section")]  # type: ignore[attr-defined]
            assert found == sections, page.name
            images = driver.find_elements(By.CSS_SELECTOR, "figure img")  # type: ignore[attr-defined]
            assert len(images) == n_figures, page.name
            for image in images:
                driver.execute_script("arguments[0].scrollIntoView();", image)  # type: ignore[attr-defined]
                width = driver.execute_script(  # type: ignore[attr-defined]
                    "return arguments[0].complete ? arguments[0].naturalWidth : 0;", image
                )
                assert width > 0, image.get_attribute("alt")
                assert _not_blank(image.screenshot_as_png), image.get_attribute("alt")
            driver.save_screenshot(str(tmp_path / f"{page.stem}.png"))  # type: ignore[attr-defined]
            assert _not_blank((tmp_path / f"{page.stem}.png").read_bytes())
            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]  # type: ignore[attr-defined]
            assert errors == [], errors
    finally:
        driver.quit()  # type: ignore[attr-defined]


def test_frontier_figure_numbers_every_portfolio_and_no_two_labels_overprint(run_folder: tuple[Path, str]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from mcalloc.report.frontier import frontier_figure

    run = mcalloc.load(run_folder[0])
    frontier = run.frontier
    assert frontier is not None
    figure = frontier_figure(run)
    assert figure is not None
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    marked = list(dict.fromkeys(frontier.loc[frontier["kind"] != "frontier", "portfolio"]))
    (legend,) = figure.legends
    entries = [text.get_text() for text in legend.get_texts()]
    assert [f"{number} {name}" for number, name in enumerate(marked, start=1)] == entries[-len(marked) :]
    curves = frontier[frontier["kind"] == "frontier"]
    weights = [c for c in curves.columns if c.startswith("w_")]
    seen_same = False
    for assets, part in curves[curves["measure"] == "volatility"].groupby("frontier"):
        spread = float(np.ptp(part[weights].to_numpy(dtype=float), axis=0).max())
        (entry,) = [e for e in entries if e.split(":")[0] == assets]
        assert ("one mix" in entry) == ("+" in str(assets) and spread < 0.01), (entry, spread)
        # a frontier lying on a smaller set's (what it adds held under 1% along it) says so: its line is hidden
        members = set(str(assets).split("+"))
        smaller = [str(o) for o in curves["frontier"].unique() if set(str(o).split("+")) < members]
        every = curves[curves["frontier"] == assets]  # along every measure's frontier
        unused = [
            other for other in smaller
            if every[[f"w_{a}" for a in members - set(other.split("+"))]].to_numpy().max() < 0.01
        ]  # fmt: skip
        if "one mix" not in entry:
            assert ("the same as" in entry) == bool(unused), (entry, unused)
            seen_same = seen_same or bool(unused)
    assert seen_same  # the default's three-asset frontier holds intl under 1% (0.6% at most)
    for panel in [p for p in figure.axes if p.get_visible()]:
        labels = [child for child in panel.texts]
        numbers = sorted(int(n) for label in labels for n in label.get_text().split(","))
        assert numbers == list(range(1, len(marked) + 1))  # each portfolio labelled once per panel
        boxes = [label.get_window_extent(renderer) for label in labels]
        for i, first in enumerate(boxes):
            for second in boxes[i + 1 :]:
                assert not first.overlaps(second), (panel.get_xlabel(), first, second)


def test_a_frontier_legend_of_long_names_stays_inside_the_picture(run_folder: tuple[Path, str]) -> None:
    # three columns of the schema's 40-character names ran off both edges of the picture (sets and portfolios)
    import dataclasses

    from mcalloc.report.frontier import frontier_figure

    run = mcalloc.load(run_folder[0])
    frontier = run.frontier
    assert frontier is not None
    longer = {name: f"{name}_named_near_the_schemas_limit_of_40"[:40] for name in frontier["portfolio"].dropna()}
    sets = {assets: str(assets).replace("+", "_index_fund_long+") for assets in frontier["frontier"].dropna()}
    renamed = frontier.assign(portfolio=frontier["portfolio"].map(longer), frontier=frontier["frontier"].map(sets))
    figure = frontier_figure(dataclasses.replace(run, frontier=renamed))
    _assert_drawn_inside("frontier, long names", figure)


@pytest.mark.parametrize("seed", range(20))
def test_portfolio_labels_never_overprint_however_the_points_fall(seed: int) -> None:
    # random layouts, a legend below taking its room as the frontier figure's does: the labels are placed
    # from the laid-out panels (placed from the panels' share of the figure, 11 of 90 such layouts overprinted)
    import pandas as pd
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from mcalloc.report.frontier import _label_portfolios, _plot_portfolios

    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 12))
    spread = float(rng.choice([0.002, 0.02, 0.1, 0.4]))
    figure = Figure(figsize=(9.0, 3.6 * int(rng.integers(1, 3))), layout="constrained")
    panels = figure.subplots(1, 2)
    marked = pd.DataFrame(
        {
            "portfolio": [f"p{i}" for i in range(n)],
            "kind": rng.choice(["benchmark", "optimised"], n),
            "volatility": 0.16 + spread * rng.random(n),
            "mean_return": 0.08 + spread * rng.random(n),
        }
    )
    for panel in panels:
        panel.plot([0.15, 0.16 + spread], [0.07, 0.08 + spread])  # a frontier's span
        _plot_portfolios(panel, marked, "volatility")
    handles = [panels[0].plot([], [], "^", label=f"{i + 1} {name}")[0] for i, name in enumerate(marked["portfolio"])]
    figure.legend(handles=handles, loc="outside lower center", ncols=3, fontsize=7)
    figure.draw_without_rendering()
    for panel in panels:
        _label_portfolios(panel, marked, "volatility")
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    for panel in panels:
        numbers = sorted(int(n) for label in panel.texts for n in label.get_text().split(","))
        assert numbers == list(range(1, n + 1))
        boxes = [label.get_window_extent(renderer) for label in panel.texts]
        for i, first in enumerate(boxes):
            for second in boxes[i + 1 :]:
                assert not first.overlaps(second), (first, second)


def _assert_drawn_inside(name: str, figure: object) -> None:
    """Every title, label and legend entry inside the picture, and every visible panel tall enough to show data."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    assert isinstance(figure, Figure), name
    renderer = FigureCanvasAgg(figure).get_renderer()
    figure.draw(renderer)
    frame = figure.bbox
    texts = list(figure.texts)  # the suptitle among them
    texts += [text for legend in figure.legends for text in legend.get_texts()]
    for panel in figure.axes:
        if panel.get_visible():
            texts += [panel.title, panel.xaxis.label, panel.yaxis.label, *panel.texts]
            texts += [text for legend in [panel.get_legend()] if legend for text in legend.get_texts()]
            # a figure too short for its rows of panels squeezes them to a line (matplotlib only warns)
            assert panel.get_window_extent(renderer).height >= 40, (name, panel.get_title())
    for text in texts:
        if not text.get_text().strip():
            continue
        box = text.get_window_extent(renderer)
        inside = box.x0 >= frame.x0 - 1 and box.x1 <= frame.x1 + 1 and box.y0 >= frame.y0 - 1 and box.y1 <= frame.y1 + 1
        assert inside, (name, text.get_text(), box, frame)


def test_every_figure_keeps_its_titles_and_labels_inside_the_picture(run_folder: tuple[Path, str]) -> None:
    # a one-panel fan chart once cut its title off at both edges
    from mcalloc.report import figures
    from mcalloc.report.frontier import frontier_figure

    run = mcalloc.load(run_folder[0])
    drawn = {
        "fan, one panel": figures.fan_figure(run, ["sp500_only"]),
        "fan": figures.fan_figure(run),
        "drawdowns": figures.drawdown_figure(run),
        "diversification": figures.diversification_figure(run),
        "frontier": frontier_figure(run),
        "weights": figures.weights_figure(run),
        "horizons": figures.horizons_figure(run),
        "correlation": figures.correlation_figure(run),
    }
    for name, figure in drawn.items():
        _assert_drawn_inside(name, figure)


def test_figures_keep_one_portfolio_visible_and_tell_many_apart(run_folder: tuple[Path, str]) -> None:
    # one mix beside the reference (configs/examples/isk_vs_depot.yaml) squeezed the diversification panels to
    # nothing; past ten portfolios two lines shared a colour; names of the schema's 40 characters pushed the
    # weights figure's label out of the picture
    import dataclasses

    import pandas as pd
    from mcalloc.report import figures

    run = mcalloc.load(run_folder[0])
    table = run.diversification
    assert table is not None
    one = dataclasses.replace(run, diversification=table[table["portfolio"] == table["portfolio"].iloc[0]])
    _assert_drawn_inside("diversification, one portfolio", figures.diversification_figure(one))

    first = run.portfolios[0]
    names = [f"a_mix_named_near_the_schemas_limit_of_40_{k:02d}"[:38] + f"{k:02d}" for k in range(14)]
    assert all(len(name) == 40 for name in names) and len(set(names)) == len(names)

    def copies(frame: pd.DataFrame | None, shift: bool = False) -> pd.DataFrame:
        assert frame is not None
        part = frame[frame["portfolio"] == first]
        parts = []
        for k, name in enumerate(names):
            copy = part.assign(portfolio=name)
            if shift:  # each copy a distinct mix
                copy["weight"] = copy["weight"] + 0.001 * k * (copy["asset"] == run.assets[0])
            parts.append(copy)
        return pd.concat(parts, ignore_index=True)

    many = dataclasses.replace(
        run,
        weights=copies(run.weights, shift=True),
        drawdowns=copies(run.drawdowns),
        horizons=copies(run.horizons),
        stability=None,
    )
    assert len(figures.distinct_portfolios(many)) == len(names)
    drawdowns, horizons = figures.drawdown_figure(many), figures.horizons_figure(many)
    assert drawdowns is not None and horizons is not None
    styles = [(str(patch.get_edgecolor()), patch.get_linestyle()) for patch in drawdowns.axes[0].patches]
    assert len(styles) == len(names) and len(set(styles)) == len(names), styles
    lines = [(str(line.get_color()), line.get_linestyle()) for line in horizons.axes[0].lines]
    assert len(lines) == len(names) and len(set(lines)) == len(names), lines
    for name, figure in {"drawdowns": drawdowns, "horizons": horizons, "weights": figures.weights_figure(many)}.items():
        _assert_drawn_inside(f"{name}, {len(names)} long names", figure)


def test_the_page_names_a_depot_and_its_rates() -> None:
    from mcalloc.config.sections import TaxConfig
    from mcalloc.report.tables import account_tax_text

    depot = TaxConfig(kind="depot").model_dump(mode="json")
    assert account_tax_text(depot, "SEK") == (
        "depot: gains 30% (average cost), 70% of a loss deductible, a deficit credited at 30% up to SEK 100,000 "
        "and 21% above, dividends 30%, fund standard income 0.4%; sold at the horizon"
    )
    depot["depot"]["liquidate_at_horizon"] = False
    assert account_tax_text(depot, "SEK").endswith("; not sold at the horizon")


def test_a_run_that_asks_for_no_frontier_says_so_beside_its_optimised_portfolios(tmp_path: Path) -> None:
    # the published example draws no frontier (points: 0) but optimises: the page said nothing was optimised
    out = tmp_path / "ru"
    example = ROOT / "configs" / "examples" / "rockafellar_uryasev.yaml"
    small = ["--set", "simulation.n_paths=300", "--set", "optimize.scenarios.n=2000"]
    assert main(["run", str(example), "-q", "--out", str(out), *small]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "No frontier was asked for (<code>optimize.frontier.points: 0</code>)" in page
    assert "No objectives were optimised" not in page and 'id="optimization"' in page


def test_the_frontier_caption_follows_the_axes_the_folder_allows(run_folder: tuple[Path, str]) -> None:
    import dataclasses

    from mcalloc.report.frontier import _axis
    from mcalloc.report.tables import drawdown_axes

    run = mcalloc.load(run_folder[0])
    assert _axis("maxdd", run.frontier) == (
        "maxdd_cvar_95_uncompounded",
        "CVaR95 of the largest drawdown, uncompounded",
    )
    assert "uncompounded (drawdowns of summed monthly returns" in drawdown_axes(run)
    # a frontier.csv of schema 1.5 has no uncompounded columns: the compounded ones, and a caption saying so
    older = dataclasses.replace(run, frontier=run.frontier.drop(columns=["cdar_95_uncompounded"]))
    assert _axis("cdar", older.frontier) == ("cdar_95", "CDaR95 (month-end drawdown), compounded")
    assert "predates the frontiers' own" in drawdown_axes(older)


def test_a_run_compared_in_another_currency_says_its_start_is_not_converted(tmp_path: Path) -> None:
    # the Swedish example also lives every portfolio in USD, from the same number of dollars as of kronor:
    # without a word, USD 2.2M beside SEK 2.1M reads as the SEK investor's money counted in dollars
    out = tmp_path / "sweden"
    small = ["--set", "simulation.n_paths=300", "--set", "simulation.horizon_years=2"]
    small += ["--set", "optimize.objectives=[]"]
    assert main(["run", str(ROOT / "configs" / "examples" / "sweden.yaml"), "-q", "--out", str(out), *small]) == 0
    run = mcalloc.load(out)
    assert run.config["currency"]["compare_in"] == "USD"
    start = f"{run.config['portfolio']['initial_wealth']:,.0f}"
    text = html.unescape(" ".join((out / "report.html").read_text(encoding="utf-8").split()))
    assert f"The USD rows are the same portfolios lived by an investor in USD, who starts with {start} USD" in text
    assert "(the same number, not converted" in text


def test_the_frontier_caption_counts_the_paths_its_frontiers_had(run_folder: tuple[Path, str]) -> None:
    import dataclasses

    from mcalloc.config.optimize_schema import FRONTIER_PATHS
    from mcalloc.report.frontier import frontier_paths
    from mcalloc.report.tables import frontier_paths_text

    run = mcalloc.load(run_folder[0])
    assert run.optimization is not None and int(run.optimization["n_fit_paths"].max()) == FRONTIER_PATHS
    text = html.unescape(" ".join((run_folder[0] / "report.html").read_text(encoding="utf-8").split()))
    # 2,000 optimiser's paths: the frontiers had all of them, and the stars are the table's own numbers
    assert f"solved and measured on all {FRONTIER_PATHS:,} of the optimiser's paths, as its table is." in text

    def fitted_on(n_paths: int) -> mcalloc.Run:
        assert run.optimization is not None
        return dataclasses.replace(run, optimization=run.optimization.assign(n_fit_paths=n_paths))

    assert frontier_paths(fitted_on(500)) == (500, True)
    assert "on all 500 of the optimiser's paths" in frontier_paths_text(fitted_on(500))
    assert frontier_paths(fitted_on(50_000)) == (FRONTIER_PATHS, False)
    assert "so they differ a little from the optimiser's table" in frontier_paths_text(fitted_on(50_000))
    assert run.optimization is not None
    older = dataclasses.replace(run, optimization=run.optimization.drop(columns=["n_fit_paths"]))
    assert frontier_paths(older) == (FRONTIER_PATHS, False)


def test_two_reports_of_one_folder_take_turns(tmp_path: Path, run_folder: tuple[Path, str]) -> None:
    # a second `mcalloc report` of the folder once cleared the first one's drawing and failed with advice to
    # make the folder writable: a report now waits for the folder's lock, held here as another report would
    import fcntl

    from mcalloc.report.page import build_report

    copy = tmp_path / "run"
    shutil.copytree(run_folder[0], copy)
    before = (copy / "report.html").stat().st_mtime_ns
    done: list[Path] = []
    with (copy / ".report.lock").open("a") as other:
        fcntl.flock(other, fcntl.LOCK_EX)
        waiting = threading.Thread(target=lambda: done.append(build_report(copy)), daemon=True)
        waiting.start()
        time.sleep(1.0)
        # it waits its turn: nothing drawn, nothing replaced
        assert waiting.is_alive() and not (copy / ".figures.drawing").exists()
        assert (copy / "report.html").stat().st_mtime_ns == before
        fcntl.flock(other, fcntl.LOCK_UN)
    waiting.join(timeout=120)
    assert done == [copy / "report.html"] and (copy / "report.html").stat().st_mtime_ns > before
    assert (copy / "figures").is_dir() and not (copy / ".figures.drawing").exists()
    assert mcalloc.load(copy, with_paths=False).metrics.shape[0] > 0  # the lock file is no result file


def test_compared_bars_say_each_runs_horizon_and_keep_its_colour_across_currencies() -> None:
    # a 3-year run's 95th-percentile drawdown beside a 10-year run's looked like the safer run; its bars now
    # say its horizon, and a run is one colour (as in the fan figure), its second currency hatched
    import matplotlib.colors
    import pandas as pd
    from mcalloc.report.figures import comparison_figure

    rows = [
        (run, currency, years, portfolio)
        for run, years in (("long", 10), ("short", 3))
        for currency in ("USD", "SEK")
        for portfolio in ("sp500_only", "equal")
    ]
    table = pd.DataFrame(rows, columns=["run", "currency", "simulation.horizon_years", "portfolio"])
    table = table.assign(cagr_median=0.07, maxdd_p95=0.5)
    figure = comparison_figure(table)
    bars = figure.axes[0].containers
    labels = [bar.get_label() for bar in bars]
    assert labels == ["long, 10 years (USD)", "long, 10 years (SEK)", "short, 3 years (USD)", "short, 3 years (SEK)"]
    colours = [matplotlib.colors.to_hex(bar.patches[0].get_facecolor()) for bar in bars]
    expected = [matplotlib.colors.to_hex(f"C{index}") for index in (0, 0, 1, 1)]
    assert colours == expected
    assert [bar.patches[0].get_hatch() or "" for bar in bars] == ["", "//", "", "//"]
    # one horizon, one currency: the run's name alone
    alone = comparison_figure(table[table["currency"] == "USD"].drop(columns="simulation.horizon_years"))
    assert [bar.get_label() for bar in alone.axes[0].containers] == ["long", "short"]


def test_the_page_states_each_portfolios_answer_with_its_interval_first(run_folder: tuple[Path, str]) -> None:
    # the page opened on hashes and package versions, and no sentence said what a mix changes or what the
    # intervals leave out; the answer now comes first, each number as diversification.csv has it
    import re

    import pandas as pd

    out = run_folder[0]
    text = (out / "report.html").read_text(encoding="utf-8")
    assert _parse(out / "report.html").sections[0] == "answer"
    items = dict(re.findall(r"<li><strong>([^<]+)</strong>: ([^<]+)\.</li>", text))
    table = pd.read_csv(out / "diversification.csv")
    table = table[table["currency"] == table["currency"].iloc[0]]
    assert set(items) == set(table["portfolio"]) and len(items) >= 3
    for portfolio, group in table.groupby("portfolio"):
        rows = group.set_index("statistic")
        said = html.unescape(items[portfolio])
        if pd.isna(rows.loc["prob_wealthier", "difference"]):
            assert said.startswith("the same mix as sp500_only"), said
            continue
        for statistic, name, larger, smaller in (
            ("cagr_median", "median CAGR", "a year higher", "a year lower"),
            ("maxdd_p95", "95th-percentile maximum drawdown", "deeper", "shallower"),
        ):
            low, high = 100 * rows.loc[statistic, "ci_low"], 100 * rows.loc[statistic, "ci_high"]
            difference = 100 * rows.loc[statistic, "difference"]
            ends = [f"{round(end, 2) + 0.0:+.2f}" for end in (low, high)]  # + 0.0: no "-0.00"
            assert f"95% interval {ends[0]} to {ends[1]}" in said, (said, statistic)
            if low <= 0 <= high:
                assert f"no difference in {name} the paths can tell apart" in said, (said, statistic)
            else:
                word = larger if difference > 0 else smaller
                assert f"{name} {abs(difference):.2f} points {word}" in said, (said, statistic)
        assert f"on {rows.loc['prob_wealthier', 'difference']:.0%} of paths" in said, said
    # what the intervals cover, and that the default's paths draw their means
    page = " ".join(html.unescape(text).split())
    assert "The intervals are Monte Carlo intervals" in page and "do not cover the model's own error" in page
    assert "each path draws its own long-run means" in page
    from mcalloc.report.answer import uncertainty_note

    assert "the means are taken as known" in uncertainty_note({"model": {"mean_uncertainty": None}})


def test_numbers_that_round_to_zero_are_shown_without_a_minus_sign() -> None:
    # an interval's end of -0.00001 read "-0.00" (points) and a share of -0.0001 "-0.0%"
    from mcalloc.report.tables import percent, points, years

    assert points(-0.00001) == "+0.00" and points(-0.0001) == "-0.01" and points(0.0) == "+0.00"
    assert percent(-0.0001) == "0.0%" and percent(-0.001) == "-0.1%" and percent(float("nan")) == ""
    assert years(3.25) == "3.25" and years(3) == "3.00"


def _diversification_rows(portfolio: str, numbers: dict[str, tuple[float, float, float]]) -> list[dict[str, object]]:
    return [
        {"portfolio": portfolio, "reference": "ref", "currency": "USD", "statistic": statistic,
         "difference": value, "ci_low": low, "ci_high": high}
        for statistic, (value, low, high) in numbers.items()
    ]  # fmt: skip


def test_the_answer_says_tiny_differences_and_near_certain_shares_without_reading_zero() -> None:
    # a difference under 0.005 points read "0.00 points lower (+0.00 to +0.00)", a share of 0.9996 "100%", and a
    # schema-1.1 folder's same mix (its share 0, not empty) "no difference ... on 0% of paths"
    import pandas as pd
    from mcalloc.report.answer import findings

    rows = _diversification_rows(
        "tiny",
        {"cagr_median": (-0.00002, -0.00003, -0.00001), "maxdd_p95": (0.02, 0.01, 0.03),
         "prob_wealthier": (0.9996, 0.9990, 0.9999)},
    )  # fmt: skip
    rows += _diversification_rows(
        "old_same", {"cagr_median": (0.0, 0.0, 0.0), "maxdd_p95": (0.0, 0.0, 0.0), "prob_wealthier": (0.0, 0.0, 0.0)}
    )
    said = {finding.portfolio: finding.text for finding in findings(pd.DataFrame(rows))}
    assert said["tiny"].startswith("median CAGR 0.002 points a year lower (95% interval -0.003 to -0.001)")
    assert "2.00 points deeper (95% interval +1.00 to +3.00)" in said["tiny"]
    assert said["tiny"].endswith("on 99.96% of paths (99.90% to 99.99%)")
    assert said["old_same"] == "the same mix as ref: no difference on any path"


def test_the_calibration_grid_keeps_a_statistic_without_percentiles_and_its_order_and_names_the_step() -> None:
    # a statistic with no percentile in any window dropped out of one of two pivots, and adding them sorted every
    # row by name; the VaR of weekly data was labelled in days
    import pandas as pd
    from mcalloc.models.validation import percentile_grid
    from mcalloc.report.tables import calibration_step, calibration_tables

    rows = []
    cases = (("vol_ann", "b", 50.0), ("vol_ann", "a", 97.0), ("corr_high_vol", "a|b", None))
    for statistic, series, percentile in cases:
        for window in ("w1", "w2"):
            inside = percentile is None or 5 <= percentile <= 95
            rows.append(
                {"statistic": statistic, "series": series, "window": window, "data": 0.1 if percentile else None,
                 "sim_p05": 0.0, "sim_p50": 0.1, "sim_p95": 0.2, "percentile": percentile, "inside_90": inside,
                 "p_value": None}
            )  # fmt: skip
    rows.append(
        {"statistic": "var99_exceedance_rate", "series": "a", "window": "w1..w2", "data": 0.013, "sim_p05": None,
         "sim_p50": 0.01, "sim_p95": None, "percentile": None, "inside_90": False, "p_value": 0.049}
    )  # fmt: skip
    frame = pd.DataFrame(rows)
    grid = percentile_grid(frame)
    assert [tuple(index) for index in grid.index] == [("vol_ann", "b"), ("vol_ann", "a"), ("corr_high_vol", "a|b")]
    assert grid.to_numpy().tolist() == [[" 50.0 ", " 50.0 "], [" 97.0*", " 97.0*"], ["", ""]]
    step = calibration_step({"data": {"frequency": "weekly"}})
    tables = calibration_tables(frame, step)
    assert step == "week" and tables is not None
    assert tables["var"].columns[1] == "weeks below the VaR"
    assert tables["var"].rows == [["a", "1.30%", "1%", "0.049", "rejected at 5%"]]
    assert calibration_step({}) == "day" and calibration_step({"data": {"frequency": "monthly"}}) == "month"
