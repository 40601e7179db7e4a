"""Portfolios along simulated paths: fees, calendar and fixed-mix accounting."""

from mcalloc.portfolio.accounting import BookSummary, CompiledBook, FixedMixBook
from mcalloc.portfolio.costs import Band, FeeModel, RebalancePolicy, TradingCosts
from mcalloc.portfolio.schedule import Schedule

__all__ = [
    "Band",
    "BookSummary",
    "CompiledBook",
    "FeeModel",
    "FixedMixBook",
    "RebalancePolicy",
    "Schedule",
    "TradingCosts",
]
