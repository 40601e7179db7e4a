"""Scenario loading: inheritance, overrides, round trips."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from mcalloc.config import apply_override, config_hash, load_scenario, scenario_to_dict
from mcalloc.errors import ConfigError

from .conftest import DEFAULT_CONFIG, ROOT


def test_default_loads_with_expected_shape() -> None:
    scenario = load_scenario(DEFAULT_CONFIG)
    assert scenario.asset_names == ["sp500", "russell2000", "intl"]
    assert scenario.simulation.n_paths == 10_000 and scenario.simulation.horizon_years == 10
    assert set(scenario.portfolio.benchmarks) == {"sp500_only", "us_80_20", "mix_60_20_20", "equal"}


def test_extends_merges_mappings_and_resolves_paths() -> None:
    scenario = load_scenario(ROOT / "configs" / "examples" / "fit_etfs.yaml")
    assert scenario.name == "fit_etfs" and scenario.model.source == "fit"
    assert scenario.seed == load_scenario(DEFAULT_CONFIG).seed
    assert scenario.data is not None
    assert scenario.data.paths["sp500"] == str((ROOT.parent / "shared" / "data" / "SPY.csv").resolve())


def test_null_in_a_child_drops_what_it_inherits_and_a_misspelt_key_is_refused_whatever_its_value(
    tmp_path: Path,
) -> None:
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {DEFAULT_CONFIG}\nmodel: {{factor: null}}\n", encoding="utf-8")
    assert load_scenario(child).model.factor is None and load_scenario(DEFAULT_CONFIG).model.factor is not None
    # a null with nothing to drop was dropped too, so a misspelt key vanished and the factor stayed
    child.write_text(f"extends: {DEFAULT_CONFIG}\nmodel: {{factr: null}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(child))}:2: model.factr: unknown key"):
        load_scenario(child)


def test_a_child_with_fewer_assets_is_told_every_entry_of_the_calibrated_model_that_names_the_dropped_one(
    tmp_path: Path,
) -> None:
    """Each message's own remedy, followed as written, leads to a scenario that loads (two of the three assets)."""
    child = tmp_path / "two.yaml"
    lines = [f"extends: {DEFAULT_CONFIG}", "assets: [{name: sp500}, {name: intl}]"]
    child.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_scenario(child)
    message = str(caught.value)
    assert "model.marginals.params: 'russell2000' is not an asset or FX factor here (expected sp500, intl)" in message
    assert message.endswith(
        "drop them with russell2000: null under model.marginals.params and model.factor.loadings, and "
        "model.mean_uncertainty's series and covariance to null"
    )
    lines += [
        "model: {marginals: {params: {russell2000: null}}, factor: {loadings: {russell2000: null}},",
        "        mean_uncertainty: {series: null, covariance: null}}",
    ]
    child.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(
        ConfigError,
        match=r"benchmarks.us_80_20: unknown asset 'russell2000' \(assets are sp500, "
        r"intl\); check the spelling, or drop the mix with us_80_20: null \(a mix of these assets needs",
    ):
        load_scenario(child)
    lines += [
        "portfolio: {benchmarks: {us_80_20: null, mix_60_20_20: null, equal: null, half: {sp500: 0.5, intl: 0.5}}}"
    ]
    child.write_text("\n".join(lines) + "\n", encoding="utf-8")
    scenario = load_scenario(child)
    assert scenario.asset_names == ["sp500", "intl"] and set(scenario.portfolio.benchmarks) == {"sp500_only", "half"}
    assert scenario.model.marginals.params is not None and set(scenario.model.marginals.params) == {"sp500", "intl"}
    with pytest.raises(ConfigError, match=r"bounds: unknown asset 'foo' \(assets are sp500, intl\); check the spel"):
        load_scenario(child, ['optimize.constraints.bounds={"foo": [0, 1]}'])


def test_null_reads_the_same_in_a_child_a_plain_file_and_a_set(tmp_path: Path) -> None:
    # a child's null used to drop what the parent set, so variance_ceiling: null (no ceiling) gave the default 4
    # under a parent with a ceiling of 2 and no ceiling under one without; --set gave no ceiling
    parent = tmp_path / "parent.yaml"
    overrides = ["simulation.n_paths=5000", "model.marginals.variance_ceiling=2.0"]
    parent.write_text(yaml.safe_dump(scenario_to_dict(load_scenario(DEFAULT_CONFIG, overrides))), encoding="utf-8")
    assert load_scenario(parent).model.marginals.variance_ceiling == 2.0
    child = tmp_path / "child.yaml"
    child.write_text(
        "extends: parent.yaml\n"
        "model: {marginals: {variance_ceiling: null}}\n"
        "simulation: {n_paths: null}\n"
        "portfolio: {benchmarks: {equal: null}}\n",
        encoding="utf-8",
    )
    scenario = load_scenario(child)
    # null is a value where the key takes one: no ceiling, as --set gives
    assert scenario.model.marginals.variance_ceiling is None
    assert load_scenario(parent, ["model.marginals.variance_ceiling=null"]).model.marginals.variance_ceiling is None
    # where it cannot be a value it means "not given": the key's default, not the parent's 5,000, nor an error
    assert scenario.simulation.n_paths == 10_000
    assert load_scenario(parent, ["simulation.n_paths=null"]).simulation.n_paths == 10_000
    # a name in a mapping of the user's own names is dropped, and the saved scenario keeps the choices
    assert "equal" not in scenario.portfolio.benchmarks and "equal" in load_scenario(parent).portfolio.benchmarks
    saved = tmp_path / "saved.yaml"
    saved.write_text(yaml.safe_dump(scenario_to_dict(scenario)), encoding="utf-8")
    assert load_scenario(saved) == scenario


def test_overrides_apply_last_and_parse_yaml() -> None:
    scenario = load_scenario(
        DEFAULT_CONFIG, ["simulation.n_paths=123", "assets.1.ter=0.005", "portfolio.rebalance=annual"]
    )
    assert scenario.simulation.n_paths == 123
    assert scenario.assets[1].ter == 0.005
    assert scenario.portfolio.rebalance == "annual"


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    scenario = load_scenario(DEFAULT_CONFIG)
    path = tmp_path / "resolved.yaml"
    # in the order the engine writes config.yaml: the first benchmark is the reference
    path.write_text(yaml.safe_dump(scenario_to_dict(scenario), sort_keys=False))
    again = load_scenario(path)
    assert again == scenario
    assert config_hash(again) == config_hash(scenario)


def test_config_hash_and_batch_run_key_see_the_order_of_the_benchmarks(tmp_path: Path) -> None:
    # the first benchmark is the reference of diversification.csv, so the same benchmarks in another order
    # give other numbers: before schema 1.15 both shared a hash, and a resumed batch took one's run for the other's
    from mcalloc.batch import runner

    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    first, second = "    sp500_only: {sp500: 1.0}\n", "    us_80_20: {sp500: 0.8, russell2000: 0.2}\n"
    assert first + second in text and "residuals: default.residuals.csv" in text
    text = text.replace(
        "residuals: default.residuals.csv", f"residuals: {DEFAULT_CONFIG.parent / 'default.residuals.csv'}"
    )
    same, swapped = tmp_path / "same.yaml", tmp_path / "swapped.yaml"
    same.write_text(text, encoding="utf-8")
    swapped.write_text(text.replace(first + second, second + first), encoding="utf-8")
    assert config_hash(load_scenario(same)) == config_hash(load_scenario(DEFAULT_CONFIG))
    scenario, other = load_scenario(DEFAULT_CONFIG), load_scenario(swapped)
    assert list(other.portfolio.benchmarks)[:2] == ["us_80_20", "sp500_only"]
    assert config_hash(other) != config_hash(scenario)
    assert runner.run_key(other) != runner.run_key(scenario)
    assert config_hash(load_scenario(swapped)) == config_hash(other)


def test_config_hash_covers_the_calibration_check_but_not_where_or_how_it_runs() -> None:
    base = config_hash(load_scenario(DEFAULT_CONFIG))
    for unchanged in ("output.dir=elsewhere", "output.report=false", "output.paths=false", "simulation.n_jobs=1"):
        assert config_hash(load_scenario(DEFAULT_CONFIG, [unchanged])) == base, unchanged
    # these set the simulated windows behind calibration.csv, so its numbers
    for changed in ("output.calibration.n_paths=500", "output.calibration.window_years=5", "seed=1"):
        assert config_hash(load_scenario(DEFAULT_CONFIG, [changed])) != base, changed


def test_error_names_file_line_and_key(tmp_path: Path) -> None:
    text = DEFAULT_CONFIG.read_text().replace("n_paths: 10000", "n_paths: -5")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), start=1) if "n_paths: -5" in row)
    with pytest.raises(ConfigError, match=rf"bad.yaml:{line}: simulation.n_paths: .*greater than or equal to 2"):
        load_scenario(path)


def test_error_in_an_override_names_the_override_once() -> None:
    with pytest.raises(ConfigError) as error:
        load_scenario(DEFAULT_CONFIG, ["simulation.n_paths=-5"])
    assert str(error.value).startswith("--set simulation.n_paths: Input should be greater than or equal to 2")
    # a whole section overridden: the key inside it is named after the override
    with pytest.raises(ConfigError) as error:
        load_scenario(DEFAULT_CONFIG, ["simulation={n_paths: -5}"])
    expected = "--set simulation: simulation.n_paths: Input should be greater than or equal to 2"
    assert str(error.value).startswith(expected)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_override_string_is_applied_or_refused_cleanly(override: str) -> None:
    data = {"simulation": {"n_paths": 10}, "assets": [{"name": "a"}]}
    try:
        result = apply_override(data, override)
    except ConfigError as error:
        assert "\n" not in str(error)
    else:
        assert isinstance(result, dict)


def test_duplicate_yaml_key_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("extends: " + str(DEFAULT_CONFIG) + "\nsimulation: {n_paths: 5}\nsimulation: {n_paths: 6}\n")
    with pytest.raises(ConfigError, match=r"dup.yaml:3: key 'simulation' appears twice"):
        load_scenario(path)


def test_a_key_that_is_a_list_or_a_mapping_is_one_line_naming_it(tmp_path: Path) -> None:
    # it crashed the loader: "unexpected error: TypeError: unhashable type: 'list'", exit 1
    head = f"extends: {DEFAULT_CONFIG}\n"
    for body, kind in (("? [a, b]\n: 1\n", "list"), ("simulation: {? {a: 1} : 2}\n", "mapping")):
        path = tmp_path / f"{kind}.yaml"
        path.write_text(head + body, encoding="utf-8")
        with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:2: a key is a {kind}; keys are plain names"):
            load_scenario(path)
    with pytest.raises(ConfigError, match=r"^--set portfolio.benchmarks: cannot read value"):
        load_scenario(DEFAULT_CONFIG, ["portfolio.benchmarks={[a]: {sp500: 1}}"])


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        # a misspelt key is unknown and leaves a required one missing: the unknown one is what to fix
        ("assets.0={nme: sp500}", "assets.0.nme: unknown key; check the spelling"),
        ("portfolio.band={kind: absolute, widht: 0.1}", "portfolio.band.widht: unknown key; check the spelling"),
        # a tagged union without its kind, or with one it does not know, names the kinds (not pydantic's words)
        ("optimize.objectives=[{knd: min_cvar}]", "required key 'kind' is missing; give one of min_variance, "),
        ("optimize.objectives=[{kind: min_cvr}]", "kind 'min_cvr' is unknown; give one of 'min_variance', "),
        ("optimize.scenarios={kin: paths}", "required key 'kind' is missing; give one of paths, parametric"),
        # a bare off as a name is YAML's false
        ("portfolio.benchmarks={off: {sp500: 1.0}}", "a name YAML reads as the boolean false (a bare off, "),
        # extends is a key, of the file: not "unknown"
        ("extends=other.yaml", "--set extends: extends is read from the scenario file only; write it there"),
    ],
)
def test_a_misspelt_or_misread_key_is_named_as_such(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_scenario(DEFAULT_CONFIG, [override])
    message = str(raised.value)
    assert expected in message and "discriminator" not in message and "[key]" not in message, message


@pytest.mark.parametrize(
    ("override", "key"),
    [
        # booleans inside mappings and lists of numbers were read as 1 and 0 (show-config printed sp500: 1.0)
        ("portfolio.benchmarks.x={sp500: true}", "portfolio.benchmarks.x.sp500"),
        ("optimize.constraints.bounds={sp500: [false, true]}", "optimize.constraints.bounds.sp500.0"),
        ("model.factor.loadings={russell2000: [yes], intl: [1.0]}", "model.factor.loadings.russell2000.0"),
        ("simulation.n_paths=yes", "simulation.n_paths"),
    ],
)
def test_a_boolean_where_a_number_belongs_is_refused_inside_mappings_and_lists(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^--set [a-z_.]+: (?:{re.escape(key)}: )?expected a number, not true"):
        load_scenario(DEFAULT_CONFIG, [override])


def test_an_error_points_at_the_set_that_caused_it_and_names_the_whole_key(tmp_path: Path) -> None:
    # data.paths.sp500 was reported as data.sp500 ("paths" taken for a union's tag), at the file's line
    fit = ROOT / "configs" / "examples" / "fit_etfs.yaml"
    with pytest.raises(ConfigError, match=r"^--set data.paths.sp500: Input should be a valid string"):
        load_scenario(fit, ["data.paths.sp500=5"])
    path = tmp_path / "paths.yaml"
    path.write_text(f"extends: {fit}\ndata:\n  paths: {{sp500: 5}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:3: data.paths.sp500: Input should be a valid"):
        load_scenario(path)
    # a check of a whole section blamed the file's line for what the --set just changed
    with pytest.raises(ConfigError, match=r"^--set model.marginals.params.sp500.beta: .* must be below 0.9999"):
        load_scenario(DEFAULT_CONFIG, ["simulation.n_paths=500", "model.marginals.params.sp500.beta=0.99"])
    # a union's tag is still left out of the path: objectives.0.alpha, not objectives.0.min_cvar.alpha
    with pytest.raises(ConfigError, match=r"^--set optimize.objectives: optimize.objectives.0.alpha: "):
        load_scenario(DEFAULT_CONFIG, ["optimize.objectives=[{kind: min_cvar, alpha: 2}]"])


def test_an_empty_file_or_a_sweep_as_a_parent_is_named_as_such(tmp_path: Path) -> None:
    # they said "name: required key is missing (+2 more)" and "seed: required key is missing (+5 more)"
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(empty))}: the file is empty; a scenario needs"):
        load_scenario(empty)
    sweep = ROOT / "configs" / "sweeps" / "horizon_x_smallcaps.yaml"
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {sweep}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(child))}:1: extends: .* is a sweep file \(it has base:\)"):
        load_scenario(child)


def test_yaml_merge_keys_work_and_the_own_keys_win(tmp_path: Path) -> None:
    # "<<: *mix" used to be refused as a syntax error ("could not determine a constructor for the tag")
    path = tmp_path / "merge.yaml"
    path.write_text(
        f"extends: {DEFAULT_CONFIG}\nportfolio:\n  benchmarks:\n    half: &mix {{sp500: 0.5, intl: 0.5}}\n"
        "    tilted: {<<: *mix, intl: 0.3, russell2000: 0.2}\n",
        encoding="utf-8",
    )
    benchmarks = load_scenario(path).portfolio.benchmarks
    assert benchmarks["tilted"] == {"sp500": 0.5, "intl": 0.3, "russell2000": 0.2}
    # a misspelt key merged in is still refused, at a line of the file
    path.write_text(
        f"extends: {DEFAULT_CONFIG}\nsimulation:\n  <<: {{n_paths: 500, horizon_yeers: 2}}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}:3: simulation.horizon_yeers: unknown key"):
        load_scenario(path)


def test_fitted_frequency_must_match_simulated_steps() -> None:
    config = ROOT / "configs" / "examples" / "fit_etfs.yaml"
    with pytest.raises(ConfigError, match=r"steps_per_year: 252 does not match data.frequency weekly.*52"):
        load_scenario(config, ["data.frequency=weekly"])
    assert (
        load_scenario(config, ["data.frequency=weekly", "simulation.steps_per_year=52"]).simulation.steps_per_year == 52
    )


def test_calibrated_parameters_without_a_step_are_judged_at_the_simulated_step() -> None:
    # mu 0.6 (percent per step) is 151% a year in days, refused, but 7.2% in months: it was refused at 12 steps
    # a year too, as if every calibrated file without model.marginals.step were daily
    monthly = ["model.marginals.step=", "simulation.steps_per_year=12", "model.marginals.params.sp500.mu=0.6"]
    assert load_scenario(DEFAULT_CONFIG, monthly).model.marginals.params["sp500"].mu == 0.6  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"params.sp500.mu: 0.6 .* 151% a year; .* within \+-0.40"):
        load_scenario(DEFAULT_CONFIG, ["model.marginals.step=", "model.marginals.params.sp500.mu=0.6"])
    with pytest.raises(ConfigError, match=r"params.sp500.mu: 0.6 .* 151% a year"):
        load_scenario(DEFAULT_CONFIG, ["model.marginals.params.sp500.mu=0.6"])  # step: daily, written


def test_a_calibrated_translating_scenario_with_a_foreign_asset_validates() -> None:
    # translate mode simulates no exchange rate: looking one up for missing parameters crashed every such scenario
    translated = ["currency.mode=translate", "assets.2.currency=EUR"]
    assert load_scenario(DEFAULT_CONFIG, translated).foreign_currencies == ["EUR"]


def test_every_yaml_example_of_docs_config_md_is_a_valid_part_of_the_default_scenario(tmp_path: Path) -> None:
    # each ```yaml block that starts with a top-level section, merged over configs/default.yaml, validates
    text = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    blocks = [block.split("```", 1)[0] for block in text.split("```yaml\n")[1:]]
    sections = {"optimize", "portfolio", "simulation", "currency", "tax", "output"}
    examples = ROOT / "configs" / "examples"
    checked = 0
    for index, block in enumerate(blocks):
        data = yaml.safe_load(block)
        if isinstance(data, dict) and "extends" in data:
            # a whole scenario file, written as if it sat in the project folder or in configs/examples/
            home = ROOT if (ROOT / data["extends"]).is_file() else examples
            path = home / f".docs_example_{index}.yaml"
            path.write_text(block, encoding="utf-8")
            try:
                load_scenario(path)
            finally:
                path.unlink()
            checked += 1
            continue
        if not isinstance(data, dict) or not set(data) <= sections:
            continue
        path = tmp_path / f"example_{index}.yaml"
        path.write_text(yaml.safe_dump({"extends": str(DEFAULT_CONFIG), **data}), encoding="utf-8")
        load_scenario(path)
        checked += 1
    assert checked >= 4


def test_dependence_settings_the_kind_ignores_warn() -> None:
    from mcalloc.pipeline import check_inputs

    overrides = ["model.dependence.kind=independent", "model.dependence.block_length=20"]
    warnings = check_inputs(load_scenario(DEFAULT_CONFIG, [*overrides, "model.dependence.lead_lag_series=[intl]"]))
    assert any(
        w.startswith("model.dependence.block_length: 20 is used by fhs and bootstrap_returns only") for w in warnings
    )
    assert any(w.startswith("model.dependence.lead_lag_series: set, but lead_lag is 0") for w in warnings)
    # the settings in use say nothing
    quiet = check_inputs(load_scenario(DEFAULT_CONFIG, ["model.dependence.block_length=20"]))
    assert not any(w.startswith("model.dependence") for w in quiet)


def test_too_few_paths_for_the_monte_carlo_intervals_warn() -> None:
    # two identical assets, 100 samples of 10 paths each: the paired 95% intervals of the differences held the
    # true 0 in only 81% to 93% of samples, and nothing said so (a 2-path run's vol difference excluded 0)
    from mcalloc.pipeline import check_inputs
    from mcalloc.scenario_warnings import FEW_PATHS

    few = check_inputs(load_scenario(DEFAULT_CONFIG, [f"simulation.n_paths={FEW_PATHS - 1}"]))
    assert any(w.startswith(f"simulation.n_paths: {FEW_PATHS - 1} paths are too few") for w in few)
    enough = check_inputs(load_scenario(DEFAULT_CONFIG, [f"simulation.n_paths={FEW_PATHS}"]))
    assert not any(w.startswith("simulation.n_paths") for w in enough)


def test_account_settings_its_kind_does_not_use_warn_and_are_left_out_of_the_resolved_scenario(
    tmp_path: Path,
) -> None:
    from mcalloc.pipeline import check_inputs

    scenario = load_scenario(DEFAULT_CONFIG, ["tax.isk.allowance=150000"])
    assert any(w.startswith("tax.isk: set, but tax.kind is none, so it does nothing") for w in check_inputs(scenario))
    assert "isk" not in scenario_to_dict(scenario)["tax"] and "depot" not in scenario_to_dict(scenario)["tax"]
    # a config.yaml written by an earlier mcalloc holds that year's ISK defaults: it still runs as it did
    resolved = scenario_to_dict(load_scenario(DEFAULT_CONFIG))
    resolved["tax"]["isk"] = {"government_bond_rate": 0.0196, "allowance": 150_000.0}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(resolved, sort_keys=False), encoding="utf-8")
    assert config_hash(load_scenario(path)) == config_hash(load_scenario(DEFAULT_CONFIG))
    isk = scenario_to_dict(load_scenario(DEFAULT_CONFIG, ["tax.kind=isk", "currency.base=SEK"]))["tax"]
    assert set(isk) == {"kind", "isk"}


@pytest.mark.parametrize(
    ("key", "default"),
    [("model.marginals.variance_ceiling", 4.0), ("optimize.grid_step", 0.1), ("optimize.fallback_solver", "SCS")],
)
def test_a_null_that_is_a_choice_survives_the_saved_scenario(tmp_path: Path, key: str, default: object) -> None:
    # null is not the default here (no ceiling, no grid, no fallback solver): the resolved scenario dropped it,
    # so a run's config.yaml ran with the default and hashed like it
    def value(scenario: object) -> object:
        for part in key.split("."):
            scenario = getattr(scenario, part)
        return scenario

    chosen = load_scenario(DEFAULT_CONFIG, [f"{key}=null"])
    assert value(chosen) is None and value(load_scenario(DEFAULT_CONFIG)) == default
    saved = tmp_path / "config.yaml"
    saved.write_text(yaml.safe_dump(scenario_to_dict(chosen)), encoding="utf-8")
    reloaded = load_scenario(saved)
    assert value(reloaded) is None and reloaded == chosen
    assert config_hash(chosen) != config_hash(load_scenario(DEFAULT_CONFIG))


def test_a_relative_path_given_outside_the_files_is_relative_to_where_it_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mcalloc
    from mcalloc.batch.sweep import read_sweep

    fit = ROOT / "configs" / "examples" / "fit_etfs.yaml"
    here = tmp_path / "work"
    here.mkdir()
    monkeypatch.chdir(here)
    # --set: from the current folder, so the saved config.yaml names the same file from anywhere
    scenario = load_scenario(fit, ["data.paths.sp500=../shared/SPY.csv"])
    assert scenario.data.paths["sp500"] == str(tmp_path / "shared" / "SPY.csv")
    sweden = load_scenario(fit.parent / "sweden_fit.yaml", ["currency.fx={USD: fx/usd.csv}"])
    assert sweden.currency.fx["USD"] == str(here / "fx" / "usd.csv")
    # the file's own paths stay relative to the file, builtin names stay names
    assert scenario.data.paths["intl"] == str((fit.parent / "../../../shared/data/EFA.csv").resolve())
    residuals = load_scenario(DEFAULT_CONFIG, ["model.dependence.residuals=r.csv"]).model.dependence
    assert getattr(residuals, "residuals", None) == str(here / "r.csv")
    # a Windows path is absolute where it is meant, and stays as written
    windows = load_scenario(fit, ["data.paths.sp500=C:\\data\\spy.csv"])
    assert windows.data.paths["sp500"] == "C:\\data\\spy.csv"
    builtin = load_scenario(fit, ["data.paths.sp500=builtin:sp500_total_return"])
    assert builtin.data.paths["sp500"] == "builtin:sp500_total_return"
    # a sweep's settings: from the sweep file's folder, as its base is
    sweeps = tmp_path / "sweeps"
    sweeps.mkdir()
    sweep = sweeps / "paths.yaml"
    sweep.write_text(
        f"name: paths\nbase: {fit}\nset:\n  data.paths.intl: c.csv\ngrid:\n  data.paths.sp500: [a.csv, /abs/b.csv]\n",
        encoding="utf-8",
    )
    runs = read_sweep(sweep).runs
    loaded = [load_scenario(run.config, run.overrides, run.origins) for run in runs]
    assert [s.data.paths["sp500"] for s in loaded] == [str(sweeps / "a.csv"), "/abs/b.csv"]
    assert {s.data.paths["intl"] for s in loaded} == {str(sweeps / "c.csv")}
    # the Python API's settings, on a scenario already loaded: from the current folder too
    again = mcalloc.api._apply(scenario.model_dump(mode="json"), ["data.paths.russell2000=iwm.csv"], [None])
    assert again.data.paths["russell2000"] == str(here / "iwm.csv")


def test_a_pair_check_blames_the_key_changed_through_the_python_api_too(tmp_path: Path) -> None:
    import mcalloc

    fit = ROOT / "configs" / "examples" / "fit_etfs.yaml"
    data = load_scenario(fit).model_dump(mode="json")
    with pytest.raises(ConfigError) as refused:
        mcalloc.api._apply(data, ["data.end=2001-06-30"], ["mcalloc.run(data__end=...)"])
    assert str(refused.value) == (
        "mcalloc.run(data__end=...): data.end: start 2001-09-01 is not before end 2001-06-30; move one of them"
    )
    # an error the file gives, beside an override that changed a neighbour, stays the file's
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {fit}\ndata: {{paths: null}}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load_scenario(child, ["data.start=2003-01-01"])
    assert str(refused.value).startswith(f"{child}:2: data.paths: give a file")


def test_a_chain_of_extends_too_deep_names_the_line(tmp_path: Path) -> None:
    # ten files extend; the file run is named, where the chain can be shortened
    (tmp_path / "c0.yaml").write_text(f"extends: {DEFAULT_CONFIG}\n", encoding="utf-8")
    for level in range(1, 12):
        (tmp_path / f"c{level}.yaml").write_text(f"name: c{level}\nextends: c{level - 1}.yaml\n", encoding="utf-8")
    assert load_scenario(tmp_path / "c9.yaml").name == "c9"
    with pytest.raises(ConfigError, match=r"c11\.yaml: extends: the chain of files it extends is longer than 10"):
        load_scenario(tmp_path / "c11.yaml")


def test_a_missing_key_is_blamed_on_the_override_only_where_it_made_the_section(tmp_path: Path) -> None:
    # a --set that starts a section the file set to null is what lacks the section's other keys; a --set of a
    # sibling in an item the file wrote is not (the file's item lacks its kind)
    nulled = tmp_path / "nulled.yaml"
    nulled.write_text(f"extends: {DEFAULT_CONFIG}\nmodel:\n  mean_uncertainty: null\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^--set model\.mean_uncertainty\.series: .*years: required key is missing"):
        load_scenario(nulled, ["model.mean_uncertainty.series=[sp500]"])
    kindless = tmp_path / "kindless.yaml"
    kindless.write_text(f"extends: {DEFAULT_CONFIG}\noptimize:\n  objectives:\n    - {{name: foo}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"kindless\.yaml:4: optimize\.objectives\.0: required key 'kind'"):
        load_scenario(kindless, ["optimize.objectives.0.name=bar"])
    with pytest.raises(ConfigError, match=r"^--set optimize\.objectives: .*required key 'kind'"):
        load_scenario(DEFAULT_CONFIG, ["optimize.objectives=[{name: x}]"])


def test_bounds_from_python_code_and_names_a_drop_left_out() -> None:
    # a numpy pair is a bound (it crashed: "truth value of an array is ambiguous"); a misspelt drop lists the
    # names left, not one an earlier null already dropped
    import numpy as np
    from mcalloc.config.optimize_schema import ConstraintsConfig

    assert ConstraintsConfig(bounds={"intl": np.array([0.1, 0.4])}).bounds == {"intl": (0.1, 0.4)}
    with pytest.raises(ConfigError, match=r"has no 'eqaul' \(it has sp500_only, us_80_20, mix_60_20_20\)"):
        load_scenario(DEFAULT_CONFIG, ["portfolio.benchmarks.equal=", "portfolio.benchmarks.eqaul="])


def test_a_number_with_leading_zeros_is_read_as_written_on_the_command_line() -> None:
    # YAML 1.1 read --set portfolio.initial_wealth=0100000 as octal 32768 and seed=0123 as 83 (a stop-53 hunt);
    # in a file such a number is refused (tests/bad_inputs/cases.yaml: yaml-octal-number)
    scenario = load_scenario(DEFAULT_CONFIG, ["portfolio.initial_wealth=0100000", "seed=0123", "assets.0.label=007"])
    assert scenario.portfolio.initial_wealth == 100_000.0 and scenario.seed == 123
    assert scenario.assets[0].label == "007"


def test_a_scenario_reached_through_a_symbolic_link_reads_its_paths_as_the_file_does(
    tmp_path: Path, shared_data: Path
) -> None:
    # given directly, a link read its relative data paths beside itself; extended, beside the real file: the
    # same file read two ways (a stop-53 hunt)
    real, link = tmp_path / "real", tmp_path / "link"
    real.mkdir()
    link.mkdir()
    (real / "SPY.csv").write_bytes((shared_data / "SPY.csv").read_bytes())
    fit_etfs = ROOT / "configs" / "examples" / "fit_etfs.yaml"
    (real / "base.yaml").write_text(f"extends: {fit_etfs}\nname: linked\ndata:\n  paths:\n    sp500: SPY.csv\n")
    (link / "base.yaml").symlink_to(real / "base.yaml")
    (link / "child.yaml").write_text("extends: base.yaml\nname: child\n")
    for reached in (link / "base.yaml", link / "child.yaml"):
        scenario = load_scenario(reached)
        assert scenario.data is not None and Path(scenario.data.paths["sp500"]) == real / "SPY.csv"


def test_a_data_path_from_the_home_folder_is_read_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ~/SPY.csv was looked for in a folder named ~ under the current one (a stop-53 hunt)
    monkeypatch.setenv("HOME", str(tmp_path))
    fit_etfs = ROOT / "configs" / "examples" / "fit_etfs.yaml"
    scenario = load_scenario(fit_etfs, ["data.paths.sp500=~/SPY.csv"])
    assert scenario.data is not None and scenario.data.paths["sp500"] == str(tmp_path / "SPY.csv")
    (tmp_path / "home.yaml").write_text(f"extends: {fit_etfs}\ndata:\n  paths:\n    intl: ~/EFA.csv\n")
    scenario = load_scenario(tmp_path / "home.yaml")
    assert scenario.data is not None and scenario.data.paths["intl"] == str(tmp_path / "EFA.csv")
