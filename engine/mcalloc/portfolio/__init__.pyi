"""Names of :mod:`mcalloc.portfolio`, imported on first use (see ``__init__.py``)."""

from . import accounting, book_summary, compiled, costs, flows, kernels, schedule, taxes
from .accounting import FixedMixBook
from .book_summary import BookSummary
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
    "book_summary",
    "compiled",
    "costs",
    "flows",
    "kernels",
    "schedule",
    "taxes",
]
