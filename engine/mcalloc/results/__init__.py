"""Results folders: atomic writing, manifest and provenance."""

from mcalloc.results.writer import SCHEMA_VERSION, RunFolder, package_versions, provenance_records

__all__ = ["SCHEMA_VERSION", "RunFolder", "package_versions", "provenance_records"]
