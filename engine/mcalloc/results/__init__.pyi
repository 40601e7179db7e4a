"""Names of :mod:`mcalloc.results`, imported on first use (see ``__init__.py``)."""

from . import inventory, writer
from .writer import SCHEMA_VERSION, RunFolder, package_versions, provenance_records

__all__ = ["SCHEMA_VERSION", "RunFolder", "inventory", "package_versions", "provenance_records", "writer"]
