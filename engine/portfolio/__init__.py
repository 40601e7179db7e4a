"""Portfolios along simulated paths: fees, calendar and fixed-mix accounting."""

from engine.portfolio.accounting import BookSummary, FixedMixBook
from engine.portfolio.costs import FeeModel
from engine.portfolio.schedule import Schedule

__all__ = ["BookSummary", "FeeModel", "FixedMixBook", "Schedule"]
