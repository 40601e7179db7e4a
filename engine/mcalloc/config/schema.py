"""The scenario schema: a validated, immutable description of one run.

Units used throughout the schema:

* ``ter``, ``min_return`` and bounds are decimals (0.0009 is 9 basis points);
  ``ter`` and a numeric ``min_return`` are annual rates.
* Marginal model parameters are in arch's units: the model describes daily
  log returns multiplied by 100 (percent), so ``omega`` is in percent squared.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field, model_validator

from mcalloc.config.base import Frozen
from mcalloc.config.calibrated_checks import check_calibrated_model
from mcalloc.config.model_schema import (
    BASELINE_KINDS,
    STEPS_PER_YEAR,
    DependenceConfig,
    MarginalParams,
    MarginalsConfig,
    ModelConfig,
    StressConfig,
    check_params,
)
from mcalloc.config.optimize_schema import (
    ConstraintsConfig,
    MinCvarObjective,
    MinVarianceObjective,
    Objective,
    OptimizeConfig,
)
from mcalloc.config.sections import (
    ECB_SOURCE,
    AssetConfig,
    CurrencyConfig,
    DataConfig,
    Identifier,
    OutputConfig,
    PortfolioConfig,
    SimulationConfig,
    TaxConfig,
    not_at_the_ecb,
)

__all__ = [
    "AssetConfig",
    "ConstraintsConfig",
    "DataConfig",
    "DependenceConfig",
    "MarginalParams",
    "MarginalsConfig",
    "MinCvarObjective",
    "MinVarianceObjective",
    "ModelConfig",
    "Objective",
    "OptimizeConfig",
    "OutputConfig",
    "PortfolioConfig",
    "Scenario",
    "SimulationConfig",
]


def _unknown_asset(key: str, asset: str, names: list[str]) -> str:
    return f"{key}: unknown asset '{asset}' (assets are {', '.join(names)})"


class Scenario(Frozen):
    """A complete, validated scenario. Build it with :func:`mcalloc.config.load_scenario`."""

    name: Identifier
    description: str | None = None
    seed: Annotated[int, Field(ge=0, lt=2**63)]
    assets: Annotated[list[AssetConfig], Field(min_length=1)]
    data: DataConfig | None = None
    currency: CurrencyConfig = CurrencyConfig()
    model: ModelConfig = ModelConfig()
    simulation: SimulationConfig = SimulationConfig()
    portfolio: PortfolioConfig = PortfolioConfig()
    tax: TaxConfig = TaxConfig()
    optimize: OptimizeConfig = OptimizeConfig()
    output: OutputConfig = OutputConfig()

    @property
    def asset_names(self) -> list[str]:
        return [asset.name for asset in self.assets]

    @property
    def foreign_currencies(self) -> list[str]:
        """Currencies other than the base that some asset is priced in, in asset order."""
        base = self.currency.base
        found = [a.currency for a in self.assets if a.currency is not None and a.currency != base]
        return list(dict.fromkeys(found))

    def _calibrated_for_others(self, unknown: list[str]) -> str:
        """What to do with a calibrated model that names series the scenario no longer has (a child's fewer assets)."""
        model = self.model
        dropped = ", ".join(f"{name}: null" for name in unknown)
        places = ["model.marginals.params"]
        loadings = model.factor.loadings if model.factor is not None else None
        if loadings and any(name in loadings for name in unknown):
            places.append("model.factor.loadings")
        uncertainty = model.mean_uncertainty
        also = []
        if uncertainty is not None and uncertainty.series and any(name in uncertainty.series for name in unknown):
            also.append("model.mean_uncertainty's series and covariance to null")
        dependence = model.dependence
        matrices = [
            key
            for key, given in (
                ("model.dependence.correlation", dependence.correlation),
                ("model.dependence.dcc.last_q", dependence.dcc.last_q if dependence.dcc is not None else None),
            )
            if given is not None
        ]
        if matrices:
            also.append(f"{' and '.join(matrices)} without their rows and columns")
        tail = "".join(f", and {item}" for item in also)
        return (
            f"a misspelling, or a calibrated model of other assets: fit one for these (model.source: fit, or "
            f"mcalloc calibrate), or drop them with {dropped} under {' and '.join(places)}{tail}"
        )

    def _priced_in(self, code: str) -> str:
        """The settings that price assets in ``code``: ``assets.0.currency`` (and how many more)."""
        keys = [f"assets.{i}.currency" for i, a in enumerate(self.assets) if a.currency == code]
        return keys[0] + (f" (and {len(keys) - 1} more)" if len(keys) > 1 else "")

    @property
    def fx_factor_names(self) -> list[str]:
        """Exchange-rate risk factors simulated with the assets (``factor`` mode only)."""
        if self.currency.mode != "factor":
            return []
        return [f"fx_{code.lower()}" for code in self.foreign_currencies]

    @property
    def factor_names(self) -> list[str]:
        """Everything the joint model simulates: the assets, then any FX factors."""
        return self.asset_names + self.fx_factor_names

    def _check_buy_in(self) -> None:
        """Refuse an initial purchase whose costs take all the initial wealth (``portfolio.initial_costs``).

        What is left is the floor a depleted account keeps, and every
        measure of the portfolio's return reads a near-total loss.
        """
        portfolio = self.portfolio
        if not portfolio.initial_costs or not (portfolio.courtage or any(a.trading_cost_bps for a in self.assets)):
            return
        wealth = portfolio.initial_wealth
        bps = {asset.name: asset.trading_cost_bps for asset in self.assets}
        mixes = {f"benchmarks.{name}": weights for name, weights in portfolio.benchmarks.items()}
        if self.optimize.objectives:  # an optimised mix holds one asset at least: the cheapest to buy
            cheapest = min(bps, key=bps.__getitem__)
            mixes["optimised portfolios"] = {cheapest: 1.0}
        for name, weights in mixes.items():
            held = [asset for asset, weight in weights.items() if weight > 0.0]
            cost = sum(portfolio.courtage + bps[asset] * 1e-4 * weights[asset] * wealth for asset in held)
            if cost >= wealth:
                raise ValueError(
                    f"portfolio.initial_wealth: buying {name} ({len(held)} asset{'s' if len(held) != 1 else ''}) "
                    f"costs {cost:,.2f} (courtage and trading_cost_bps), all of the initial wealth {wealth:,.2f}; "
                    "raise portfolio.initial_wealth, lower portfolio.courtage, or set portfolio.initial_costs: false"
                )

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        names = self.asset_names
        if len(set(names)) != len(names):
            raise ValueError("assets: names must be unique")
        self._check_fx()
        self._check_data(names)
        self._check_model(names)
        for name, weights in self.portfolio.benchmarks.items():
            for asset in weights:
                if asset not in names:
                    raise ValueError(
                        f"{_unknown_asset(f'portfolio.benchmarks.{name}', asset, names)}; check the spelling, or "
                        f"drop the mix with {name}: null (a mix of these assets needs a name of its own: under this "
                        "one, a child's weights merge with its parent's)"
                    )
        self._check_optimize(names)
        self._check_buy_in()
        if self.tax.kind != "none" and self.currency.base != "SEK":
            raise ValueError(
                f"tax.kind: {self.tax.kind} is a Swedish account kept in SEK; set currency.base: SEK "
                f"(not {self.currency.base}) and assets[].currency of funds priced in other currencies "
                "(configs/examples/sweden.yaml)"
            )
        if self.tax.kind == "depot" and self.portfolio.rebalance == "daily":
            raise ValueError(
                "tax.kind: a depot's gains are booked at each trade, which daily rebalancing does not record; "
                "choose monthly or longer rebalancing"
            )
        lows, _ = self.optimize.constraints.weight_bounds(names)
        if self.tax.kind == "depot" and self.optimize.objectives and min(lows) < 0.0:
            # the average-cost method books sales of holdings owned, not a short's gains: its tax would be wrong
            short = names[lows.index(min(lows))]
            raise ValueError(
                f"optimize.constraints.long_only: a depot's gains are booked by average cost of holdings owned, "
                f"which short positions are not ({short} may go to {min(lows):g}); set long_only: true, or bounds "
                "of at least 0 for every asset, with tax.kind: depot"
            )
        horizon = self.simulation.horizon_years
        for index, flow in enumerate(self.portfolio.flows):
            # no month between its ends is a flow that never happens (after the horizon: a run warning)
            first, last = flow.month_span(horizon)
            if first < 12 * horizon and first >= last:
                raise ValueError(
                    f"portfolio.flows.{index}: start_year {flow.start_year:g} and end_year {flow.end_year:g} round "
                    f"to the same month, so no {flow.kind} happens; set them at least a month apart"
                )
            if flow.currency is not None and flow.currency != self.currency.base:
                raise ValueError(
                    f"portfolio.flows.{index}.currency: flows are in the base currency ({self.currency.base}), "
                    f"not {flow.currency}; convert the amount or drop the key"
                )
        self._check_compare_in()
        if self.portfolio.rebalance == "daily" and any(a.trading_cost_bps > 0 for a in self.assets):
            raise ValueError(
                "portfolio.rebalance: trading costs (assets' trading_cost_bps) are not booked with daily "
                "rebalancing; choose monthly or longer, or set trading_cost_bps to 0"
            )
        if not self.portfolio.benchmarks and not self.optimize.objectives:
            raise ValueError(
                "portfolio.benchmarks|optimize.objectives: portfolio.benchmarks and optimize.objectives are both "
                "empty; add a benchmark mix or an objective"
            )
        return self

    def _check_fx(self) -> None:
        base = self.currency.base
        for code, source in self.currency.fx.items():
            if code == base:
                raise ValueError(
                    f"currency.fx.{code}: {code} is the base currency (currency.base), which needs no exchange "
                    "rate; drop the key"
                )
            if code not in self.foreign_currencies:
                raise ValueError(
                    f"currency.fx.{code}: no asset is priced in {code} (assets[].currency, base {base}); "
                    "drop the key or set the asset's currency"
                )
            pair = ECB_SOURCE.match(source)
            from mcalloc.data.builtin import ecb_in_capitals  # pandas's import, only where a pair is given

            capitals = ecb_in_capitals(source.removeprefix("builtin:")) if source.startswith("builtin:") else None
            if capitals is not None:  # read only by a fit: refused here, before any run needs it
                raise ValueError(f"currency.fx.{code}: the ECB pairs are written in capitals: builtin:{capitals}")
            if pair is not None and (pair.group(1), pair.group(2)) != (code, base):
                absent = not_at_the_ecb(code, base)
                hint = f"the ECB rates have no {absent}, so give a file" if absent else f"builtin:ecb:{code}/{base}"
                raise ValueError(
                    f"currency.fx.{code}: {source} is the price of one {pair.group(1)} in {pair.group(2)}; "
                    f"this key needs the price of one {code} in {base}: {hint}"
                )

    def _check_data(self, names: list[str]) -> None:
        """Every series name in the data section's mappings is an asset, whatever the model's source.

        A calibrated scenario's data section is what ``mcalloc fit`` and
        ``calibrate`` read, so a misspelt name there is refused as in a fit:
        it would otherwise leave its asset on the default file or column.
        """
        if self.data is None:
            return
        for key, mapping in (("paths", self.data.paths), ("columns", self.data.columns)):
            unknown = [n for n in mapping if n not in names]
            if unknown:
                raise ValueError(f"data.{key}: '{unknown[0]}' is not an asset (assets are {', '.join(names)})")

    def _check_compare_in(self) -> None:
        code = self.currency.compare_in
        if code is None:
            return
        if self.currency.mode != "factor" or code == self.currency.base:
            raise ValueError(
                f"currency.compare_in: needs currency.mode: factor and a currency other than the base "
                f"({self.currency.base}); drop the key or set currency.mode: factor"
            )
        other = [a.name for a in self.assets if a.currency != code]
        if other:
            raise ValueError(
                f"currency.compare_in: asset '{other[0]}' is not priced in {code}; the comparison needs every "
                f"asset in {code} (set assets[].currency) or drop the key"
            )
        if self.tax.kind != "none" or self.portfolio.flows:
            raise ValueError(
                f"currency.compare_in: taxes and cash flows are in {self.currency.base}; the {code} investor's "
                "side has neither, so drop tax and portfolio.flows or the key"
            )

    def _check_model(self, names: list[str]) -> None:
        model = self.model
        if model.source == "fit":
            if self.data is None:
                raise ValueError("data: model.source is 'fit' but there is no data section to fit to")
            if self.simulation.steps_per_year not in STEPS_PER_YEAR[self.data.frequency]:
                per_year = {"daily": 252, "weekly": 52, "monthly": 12}[self.data.frequency]
                raise ValueError(
                    f"simulation.steps_per_year: {self.simulation.steps_per_year} does not match "
                    f"data.frequency {self.data.frequency}: a model fitted to {self.data.frequency} returns "
                    f"simulates {self.data.frequency} steps; set simulation.steps_per_year: {per_year}"
                )
            missing = [n for n in names if n not in self.data.paths and self.data.file is None]
            if missing:
                raise ValueError(f"data.paths: no file for asset(s) {', '.join(missing)}")
            no_fx = [c for c in self.foreign_currencies if c not in self.currency.fx]
            if no_fx:
                code, base = no_fx[0], self.currency.base
                absent = not_at_the_ecb(code, base)
                if absent is not None:  # a typo in a currency code is the likelier cause
                    raise ValueError(
                        f"currency.fx: no exchange-rate series for {code}, which {self._priced_in(code)} names; "
                        f"the ECB rates have no {absent}: check the code, or give a file of the price of one "
                        f"{code} in {base}"
                    )
                raise ValueError(
                    f"currency.fx: no exchange-rate series for {', '.join(no_fx)} (price of one unit in "
                    f"{base}); e.g. {code}: builtin:ecb:{code}/{base}"
                )
        else:
            params = model.marginals.params or {}
            names = self.factor_names
            unknown = [n for n in params if n not in names]
            if unknown:
                raise ValueError(
                    f"model.marginals.params: '{unknown[0]}' is not an asset or FX factor here "
                    f"(expected {', '.join(names)}); {self._calibrated_for_others(unknown)}"
                )
            missing = [n for n in names if n not in params]
            # exchange rates are simulated series in factor mode only (translate converts the history)
            rates = (
                dict(zip(self.fx_factor_names, self.foreign_currencies, strict=True)) if self.fx_factor_names else {}
            )
            if missing and missing[0] in rates:
                code = rates[missing[0]]
                raise ValueError(
                    f"model.marginals.params: no parameters for the exchange rate {missing[0]}, which "
                    f"{self._priced_in(code)}: {code} brings in; check the code, or calibrate the scenario again "
                    f"with currency.fx.{code} (see `mcalloc calibrate`)"
                )
            if missing:
                raise ValueError(
                    f"model.marginals.params: no parameters for asset(s) {', '.join(missing)} "
                    "(calibrated models need parameters for every asset, or set model.source: fit)"
                )
            step = model.marginals.step
            if step is None:  # the parameters are per simulated step: their ranges are judged at its length
                # before the checks across keys, which would blame a key whose value is right (max_variance
                # against an omega out of range)
                for name, given in (model.marginals.params or {}).items():
                    kind = given.kind or model.marginals.kind
                    problem = None if kind == "auto" else check_params(kind, given, self.simulation.steps_per_year)
                    if problem is not None:
                        raise ValueError(f"model.marginals.params.{name}{problem}")
            check_calibrated_model(model, names, self.simulation.start)
            self._check_calibrated_dependence()
            if step is not None and self.simulation.steps_per_year not in STEPS_PER_YEAR[step]:
                per_year = {"daily": 252, "weekly": 52, "monthly": 12}[step]
                raise ValueError(
                    f"simulation.steps_per_year: {self.simulation.steps_per_year} does not match "
                    f"model.marginals.step {step}: the calibrated parameters describe {step} steps; "
                    f"set simulation.steps_per_year: {per_year}"
                )
        self._check_factor()
        self._check_lead_lag()
        corr = model.dependence.correlation
        factors = self.factor_names
        if corr is not None and len(corr) != len(factors):
            raise ValueError(
                f"model.dependence.correlation: is {len(corr)}x{len(corr)} but there are {len(factors)} "
                f"simulated series ({', '.join(factors)})"
            )

    def _check_calibrated_dependence(self) -> None:
        dependence = self.model.dependence
        key = "model.dependence"
        kind = dependence.kind
        if kind in BASELINE_KINDS:
            raise ValueError(
                f"{key}.kind: {kind} is a baseline estimated from data; set model.source: fit and give a data section"
            )
        if kind in ("gaussian", "t", "dcc") and dependence.correlation is None:
            raise ValueError(
                f"{key}.correlation: required for a calibrated {kind} dependence (mcalloc calibrate writes it)"
            )
        if kind == "t" and dependence.nu is None:
            raise ValueError(f"{key}.nu: required for a calibrated t copula (degrees of freedom, at least 2.05)")
        if kind == "dcc" and dependence.dcc is None:
            raise ValueError(f"{key}.dcc: required for a calibrated dcc dependence, e.g. {{a: 0.03, b: 0.95}}")
        if dependence.stress.worst_days is not None:
            raise ValueError(
                f"{key}.stress.worst_days: measured on data, so it needs model.source: fit; "
                "a calibrated scenario holds the stressed correlation itself (use correlation_blend to stress it; "
                "the fit's worst_days belongs in model.fitted_with.stress)"
            )
        if kind == "fhs" and dependence.residuals is None:
            raise ValueError(
                f"{key}.residuals: a calibrated fhs dependence needs the CSV of standardised residuals "
                "that mcalloc calibrate writes beside the calibrated scenario"
            )

    def _check_lead_lag(self) -> None:
        model = self.model
        dependence = model.dependence
        if dependence.lead_lag and model.source != "fit":
            raise ValueError(
                "model.dependence.lead_lag: applied when fitting (model.source: fit); calibrated parameters "
                "already hold the adjusted correlation or loadings, so remove it (the fit's lead_lag belongs in "
                "model.fitted_with)"
            )
        self._check_fit_settings("model.dependence", dependence.lead_lag, dependence.lead_lag_series, dependence.stress)
        if model.fitted_with is not None:
            fitted_with = model.fitted_with
            self._check_fit_settings(
                "model.fitted_with", fitted_with.lead_lag, fitted_with.lead_lag_series, fitted_with.stress
            )

    def _check_fit_settings(self, key: str, lead_lag: int, listed: list[str] | None, stress: StressConfig) -> None:
        """The lead-lag settings a fit uses: the section's own, or those a calibrated model records for a refit."""
        names = self.factor_names
        unknown = [name for name in listed or [] if name not in names]
        if unknown:
            raise ValueError(f"{key}.lead_lag_series: '{unknown[0]}' is not a series here (series: {', '.join(names)})")
        kind = self.model.dependence.kind
        if lead_lag and self.model.factor is None and kind not in ("gaussian", "t", "dcc"):
            raise ValueError(
                f"{key}.lead_lag: adjusts a copula's correlation (gaussian, t, dcc) or, with "
                f"model.factor, the loadings; {kind} has neither, so remove it or add a factor"
            )
        if lead_lag and stress.worst_days is not None and self.model.factor is None:
            raise ValueError(
                f"{key}.lead_lag: without a factor, stress.worst_days replaces the correlation that "
                "lead_lag would adjust, so the two cannot be combined; remove one of them"
            )

    def _check_factor(self) -> None:
        factor = self.model.factor
        if factor is None:
            return
        names = self.factor_names
        if factor.market not in names:
            raise ValueError(
                f"model.factor.market: '{factor.market}' is not a series here (series: {', '.join(names)})"
            )
        if self.model.dependence.kind in BASELINE_KINDS:
            raise ValueError(
                f"model.factor: the {self.model.dependence.kind} baseline has no volatility models to share a "
                "factor; remove model.factor"
            )
        loadings = factor.loadings or {}
        for name, values in loadings.items():
            if name not in names or name == factor.market:
                raise ValueError(
                    f"model.factor.loadings.{name}: not a non-market series here "
                    f"(expected some of {', '.join(n for n in names if n != factor.market)})"
                )
            if not 1 <= len(values) <= 6 or not all(math.isfinite(v) for v in values):
                raise ValueError(
                    f"model.factor.loadings.{name}: give 1 to 6 finite loadings (lag 0, lag 1, ...), got {values}"
                )
        regimes = factor.regimes
        if regimes is not None:
            if regimes.series not in names:
                raise ValueError(
                    f"model.factor.regimes.series: '{regimes.series}' is not a series here (series: {', '.join(names)})"
                )
            if self.model.source == "calibrated" and regimes.loadings is None:
                raise ValueError(
                    "model.factor.regimes: calibrated runs need loadings and transition (mcalloc calibrate writes them)"
                )
            if regimes.loadings is not None and not 1 <= len(regimes.loadings[0]) <= 6:
                raise ValueError("model.factor.regimes.loadings: give 1 to 6 loadings per regime (lag 0, lag 1, ...)")
        if self.model.source == "calibrated":
            missing = [n for n in names if n != factor.market and n not in loadings]
            if missing:
                raise ValueError(
                    f"model.factor.loadings: no loadings for {', '.join(missing)} "
                    "(mcalloc calibrate writes them; 0 means no link to the market)"
                )

    def _check_optimize(self, names: list[str]) -> None:
        constraints = self.optimize.constraints
        for asset in constraints.bounds:
            if asset not in names:
                raise ValueError(
                    f"{_unknown_asset('optimize.constraints.bounds', asset, names)}; check the spelling, or drop it "
                    f"with {asset}: null"
                )
        lows, highs = constraints.weight_bounds(names)

        # every bound that takes part, not only the one whose line the error points at; an unlisted
        # asset's default too (a short's -1 counts in the sum)
        def listed(name: str, value: float) -> str:
            return f"{name} {value:.4g}" + ("" if name in constraints.bounds else " (default)")

        if sum(lows) > 1.0 + 1e-12:
            parts = ", ".join(listed(name, low) for name, low in zip(names, lows, strict=True) if low != 0)
            raise ValueError(
                f"optimize.constraints.bounds: weights cannot sum to 1: the minimums add to {sum(lows):.4g} "
                f"({parts}); lower them"
            )
        if sum(highs) < 1.0 - 1e-12:
            parts = ", ".join(listed(name, high) for name, high in zip(names, highs, strict=True))
            raise ValueError(
                f"optimize.constraints.bounds: weights cannot sum to 1: the maximums add to {sum(highs):.4g} "
                f"({parts}); raise them"
            )
        optimize = self.optimize
        drawn = getattr(optimize.scenarios, "n", None)
        source_paths = drawn or optimize.fit_paths(self.simulation.n_paths)
        if optimize.objectives and optimize.batches >= 2 and source_paths // optimize.batches < 2:
            # blamed on whichever of the two keys the user changed last (a --set of simulation.n_paths)
            paths_key = (
                "optimize.scenarios.n"
                if drawn
                else ("optimize.n_paths" if optimize.n_paths is not None else "simulation.n_paths")
            )
            raise ValueError(
                f"optimize.batches|{paths_key}: {optimize.batches} batches of the optimiser's {source_paths} "
                "paths leave fewer than 2 paths each; lower optimize.batches (0 turns stability.csv off) or raise "
                f"{paths_key}"
            )
        labels = [objective.label for objective in self.optimize.objectives]
        unknown_portfolios = [
            p for p in self.output.report_portfolios if p not in {*labels, *self.portfolio.benchmarks}
        ]
        if unknown_portfolios:
            raise ValueError(
                f"output.report_portfolios: '{unknown_portfolios[0]}' is neither a benchmark nor an objective's name"
            )
        clashes = set(labels) & set(self.portfolio.benchmarks) | {x for x in labels if labels.count(x) > 1}
        if clashes:
            raise ValueError(
                f"optimize.objectives: portfolio name(s) {', '.join(sorted(clashes))} used twice; "
                "give each objective a distinct 'name'"
            )
        for index, objective in enumerate(self.optimize.objectives):
            target = objective.min_return
            if isinstance(target, str) and target.removeprefix("benchmark:") not in self.portfolio.benchmarks:
                raise ValueError(
                    f"optimize.objectives: min_return '{target}' names no benchmark in portfolio.benchmarks"
                )
            budgets = getattr(objective, "budgets", None)
            unknown = [asset for asset in budgets or {} if asset not in names]
            if unknown:
                raise ValueError(_unknown_asset(f"optimize.objectives.{index}.budgets", unknown[0], names))
            missing = [asset for asset in names if asset not in (budgets or {})]
            if budgets is not None and missing:
                raise ValueError(
                    f"optimize.objectives.{index}.budgets: no budget for {', '.join(missing)}; give every asset a "
                    "share of risk (an asset without one would get no weight), or drop budgets for equal shares"
                )
            if objective.kind == "risk_parity" and not constraints.long_only:
                raise ValueError(f"optimize.objectives.{index}: risk_parity needs optimize.constraints.long_only: true")
            if objective.kind == "risk_parity" and (constraints.max_assets or len(names)) < len(names):
                most = f"{constraints.max_assets} asset{'' if constraints.max_assets == 1 else 's'}"
                raise ValueError(
                    f"optimize.constraints.max_assets: {most}, but risk_parity "
                    f"(optimize.objectives.{index}) gives each of the {len(names)} its share of the risk, so it holds "
                    "them all; drop max_assets or choose another objective"
                )
            if objective.kind == "risk_parity" and objective.min_return is not None:
                raise ValueError(
                    f"optimize.objectives.{index}.min_return: risk_parity fixes the weights by their risk shares "
                    "alone; drop min_return or choose another objective"
                )
            if objective.log_growth and not constraints.long_only:
                raise ValueError(
                    f"optimize.objectives.{index}: {objective.kind} works on log growth, which short positions can "
                    "make undefined (a path that loses everything); set optimize.constraints.long_only: true"
                    + (" or form: uncompounded" if objective.kind == "min_cvar" else "")
                )
        for group_name, group in constraints.groups.items():
            unknown = [asset for asset in group.assets if asset not in names]
            if unknown:
                raise ValueError(_unknown_asset(f"optimize.constraints.groups.{group_name}.assets", unknown[0], names))
        turnover = constraints.turnover
        if turnover is not None:
            unknown = [asset for asset in turnover.current if asset not in names]
            if unknown:
                raise ValueError(_unknown_asset("optimize.constraints.turnover.current", unknown[0], names))
            if abs(sum(turnover.current.values()) - 1.0) > 1e-6:
                raise ValueError(
                    f"optimize.constraints.turnover.current: weights sum to {sum(turnover.current.values()):.6g}, not 1"
                )
        step = self.optimize.grid_step
        if step is not None and abs(round(1.0 / step) * step - 1.0) > 1e-9:
            raise ValueError(f"optimize.grid_step: {step} does not divide 1; use e.g. 0.1, 0.05 or 0.02")
        source = self.optimize.scenarios
        if source.kind == "parametric":
            if sorted(source.mean) != sorted(names):
                raise ValueError(f"optimize.scenarios.mean: needs one mean per asset ({', '.join(names)})")
            if len(source.covariance) != len(names):
                raise ValueError(
                    f"optimize.scenarios.covariance: is {len(source.covariance)}x{len(source.covariance)} but there "
                    f"are {len(names)} assets"
                )
        if constraints.max_assets is not None and constraints.max_assets > len(names):
            raise ValueError(
                f"optimize.constraints.max_assets: {constraints.max_assets} is more than the {len(names)} assets"
            )
