"""Portfolios along simulated paths: fees, calendar and fixed-mix accounting."""

from engine.portfolio.accounting import BookSummary, CompiledBook, FixedMixBook
from engine.portfolio.costs import Band, FeeModel, RebalancePolicy, TradingCosts
from engine.portfolio.schedule import Schedule

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
