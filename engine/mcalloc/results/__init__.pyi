"""Names of :mod:`mcalloc.results`, imported on first use (see ``__init__.py``)."""

from .writer import SCHEMA_VERSION, RunFolder, package_versions, provenance_records

__all__ = ["SCHEMA_VERSION", "RunFolder", "package_versions", "provenance_records"]
