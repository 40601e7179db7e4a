"""Taxes on the account, charged along each path: the Swedish ISK's yearly tax on the capital base.

An investment savings account (investeringssparkonto) is not taxed on gains
or dividends. Instead, each year (Skatteverket's method): the capital base is
a quarter of the sum of the account's value at the start of each quarter
and of the deposits made during the year; less a tax-free allowance (from
2025), it earns a standard income at the government bond rate of 30 November
of the year before plus 1 percentage point, at least 1.25%; 30% of that is
the tax. The rates and the allowance are inputs (:class:`IskConfig`), with
the income year 2025 values as defaults.

The tax is charged from the account at the end of each simulated year
(in practice it is paid the following spring) by selling every holding in
proportion. It lowers the value of a unit, so performance is after tax.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.config.schema import IskConfig
from engine.portfolio.accounting import FixedMixBook

__all__ = ["IskTax"]


@dataclass(frozen=True)
class IskTax:
    """The ISK tax in the books' units: ``allowance`` is a share of the initial wealth."""

    standard_rate: float
    tax_rate: float
    allowance: float

    @classmethod
    def from_config(cls, config: IskConfig, initial_wealth: float) -> IskTax:
        return cls(config.standard_rate, config.tax_rate, config.allowance / initial_wealth)

    def due(self, quarter_values: np.ndarray, deposits: np.ndarray) -> np.ndarray:
        """Tax for a year from the sum of the four quarter-start values and the year's deposits."""
        base = np.maximum((quarter_values + deposits) / 4.0 - self.allowance, 0.0)
        tax: np.ndarray = base * self.standard_rate * self.tax_rate
        return tax

    def on_month_start(self, book: FixedMixBook, month: int) -> None:
        """Record the account's value as a quarter starts (before that month's flows)."""
        if month % 3 == 0:
            book.record_quarter_start()

    def on_year_end(self, book: FixedMixBook) -> None:
        """Charge the year's tax and start the next year's tally."""
        quarters, deposits = book.close_tax_year()
        book.charge_tax(self.due(quarters, deposits))
