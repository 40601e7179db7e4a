"""Taxes on the account, charged along each path: the Swedish ISK and the ordinary account (depå).

An investment savings account (investeringssparkonto) is not taxed on gains
or dividends. Instead, each year (Skatteverket's method): the capital base is
a quarter of the sum of the account's value at the start of each quarter
and of the deposits made during the year; less a tax-free allowance (from
2025), it earns a standard income at the government bond rate of 30 November
of the year before plus 1 percentage point, at least 1.25%; 30% of that is
the tax. The rates and the allowance are inputs (:class:`IskConfig`), with
the income year 2026 values as defaults.

Foreign tax withheld on dividends (``foreign_withholding`` of
``assets[].dividend_yield``, e.g. 15% on US dividends) is paid as the
dividends come and credited against the year's ISK tax, up to it.

An ordinary account (:class:`DepotTax`) is taxed on realised gains, by the
average-cost method, on dividends, and on the standard income of fund units
(0.4% of their value at the start of each year); see :class:`DepotConfig`.

Taxes are charged from the account (the yearly ones at the end of each
simulated year; in practice they are paid the following spring) by selling
every holding in proportion. They lower the value of a unit, so performance
is after tax.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mcalloc.config.sections import DepotConfig, IskConfig
from mcalloc.portfolio.accounting import FixedMixBook

__all__ = ["AccountTax", "DepotTax", "IskTax"]


@dataclass(frozen=True)
class IskTax:
    """The ISK tax in the books' units: ``allowance`` is a share of the initial wealth.

    ``monthly_yield`` (n_assets,) is each asset's dividend yield per month,
    on which ``withholding`` is paid and later credited.
    """

    standard_rate: float
    tax_rate: float
    allowance: float
    monthly_yield: np.ndarray | None = None
    withholding: float = 0.0

    @classmethod
    def from_config(cls, config: IskConfig, initial_wealth: float, dividend_yield: np.ndarray | None = None) -> IskTax:
        monthly = None if dividend_yield is None or not dividend_yield.any() else dividend_yield / 12.0
        return cls(
            config.standard_rate,
            config.tax_rate,
            config.allowance / initial_wealth,
            monthly,
            config.foreign_withholding,
        )

    def prepare(self, book: FixedMixBook) -> None:
        """Keep each path's taxes; nothing else beyond the book's own tallies."""
        book.keep_taxes()

    def on_month_end(self, book: FixedMixBook) -> None:
        """Foreign tax withheld on the month's dividends."""
        if self.monthly_yield is not None and self.withholding:
            book.record_withheld(book.pay_dividend_tax(self.monthly_yield, self.withholding))

    def due(self, quarter_values: np.ndarray, deposits: np.ndarray) -> np.ndarray:
        """Tax for a year from the sum of the four quarter-start values and the year's deposits."""
        base = np.maximum((quarter_values + deposits) / 4.0 - self.allowance, 0.0)
        tax: np.ndarray = base * self.standard_rate * self.tax_rate
        return tax

    def on_month_start(self, book: FixedMixBook, month: int) -> None:
        """Record the account's value as a quarter starts (before that month's flows)."""
        if month % 3 == 0:
            book.record_quarter_start()

    def on_year_end(self, book: FixedMixBook, last: bool = False) -> None:
        """Charge the year's tax, less the foreign tax withheld this year, and start the next year's tally."""
        quarters, deposits = book.close_tax_year()
        withheld = book.close_withheld()
        book.charge_tax(np.maximum(self.due(quarters, deposits) - withheld, 0.0))


@dataclass(frozen=True)
class DepotTax:
    """Tax on an ordinary account (depå): realised gains by average cost, and dividends as they are paid."""

    gains_rate: float
    loss_deduction: float
    dividend_rate: float
    liquidate: bool
    monthly_yield: np.ndarray | None = None
    fund_income: float = 0.0
    deficit_limit: float = math.inf
    deficit_rate_above: float = 0.0

    @classmethod
    def from_config(
        cls, config: DepotConfig, initial_wealth: float, dividend_yield: np.ndarray | None = None
    ) -> DepotTax:
        """The account's rules, with the deficit limit (SEK) in units of ``initial_wealth``, as the books keep."""
        monthly = None if dividend_yield is None or not dividend_yield.any() else dividend_yield / 12.0
        limit = math.inf if config.deficit_limit is None else config.deficit_limit / initial_wealth
        return cls(
            config.capital_gains_rate,
            config.loss_deduction,
            config.dividend_tax_rate,
            config.liquidate_at_horizon,
            monthly,
            config.fund_standard_income,
            limit,
            config.deficit_rate_above,
        )

    def due(
        self,
        realised: np.ndarray,
        year_start_value: np.ndarray | float = 0.0,
        dividends: np.ndarray | float = 0.0,
    ) -> np.ndarray:
        """What the year's settlement charges; negative (a credit, reinvested) for a net loss.

        The year's capital income is its net realised gains, its funds'
        standard income (``fund_income`` of the value at the year's start)
        and its ``dividends``, less ``loss_deduction`` of a net loss. A
        positive income is taxed at ``gains_rate``; a negative one is a
        deficit that earns ``gains_rate`` of itself up to ``deficit_limit``
        and ``deficit_rate_above`` beyond (Swedish law: 30% up to SEK
        100,000 and 21% above, IL 67 kap. 10 §). The dividends' tax was paid
        as they came (``dividend_rate``), so it is credited here.
        """
        gains = np.maximum(realised, 0.0) + self.fund_income * np.asarray(year_start_value)
        losses = np.maximum(-realised, 0.0)
        income = gains + dividends - self.loss_deduction * losses
        deficit = np.maximum(-income, 0.0)
        below = np.minimum(deficit, self.deficit_limit)
        credit = self.gains_rate * below + self.deficit_rate_above * (deficit - below)
        due: np.ndarray = np.where(income >= 0.0, self.gains_rate * income, -credit) - self.dividend_rate * dividends
        return due

    def prepare(self, book: FixedMixBook) -> None:
        """Keep each path's taxes, and start the books' average-cost basis at the first purchase."""
        book.keep_taxes()
        book.track_cost_basis()

    def on_month_start(self, book: FixedMixBook, month: int) -> None:
        """Record the account's value as a year starts, for the funds' standard income (before the month's flows)."""
        if month % 12 == 0:
            book.record_quarter_start()

    def on_month_end(self, book: FixedMixBook) -> None:
        """The month's dividends: counted for the year's settlement and reinvested into the basis, their tax paid.

        With ``dividend_rate`` 0 nothing is paid as they come, but they are
        still the year's capital income.
        """
        if self.monthly_yield is not None:
            book.pay_dividend_tax(self.monthly_yield, self.dividend_rate)

    def on_year_end(self, book: FixedMixBook, last: bool = False) -> None:
        """Tax the year's net gains (selling everything first at the horizon, if asked)."""
        sold = last and self.liquidate
        if sold:
            book.realise_all()
        year_start, _ = book.close_tax_year()
        # after the sale the account is cash: the tax is paid (a credit kept) without trading, as the sale was
        book.charge_tax(self.due(book.close_realised(), year_start, book.close_dividends()), in_cash=sold)


AccountTax = IskTax | DepotTax
"""What a simulation plan charges along the paths."""
