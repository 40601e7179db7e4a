"""Names of :mod:`mcalloc.portfolio`, imported on first use (see ``__init__.py``)."""

from . import accounting, compiled, costs, flows, kernels, schedule, summary, taxes
from .accounting import BookSummary, FixedMixBook
from .compiled import CompiledBook
from .costs import Band, FeeModel, RebalancePolicy, TradingCosts
from .schedule import Schedule

__all__ = [
    "Band",
    "BookSummary",
    "CompiledBook",
    "FeeModel",
    "FixedMixBook",
    "RebalancePolicy",
    "Schedule",
    "TradingCosts",
    "accounting",
    "compiled",
    "costs",
    "flows",
    "kernels",
    "schedule",
    "summary",
    "taxes",
]
