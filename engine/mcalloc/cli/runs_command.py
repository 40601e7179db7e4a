"""``mcalloc runs [DIR]`` lists results folders and their state; ``mcalloc clean [DIR]`` removes stale ones.

A folder is stale when a run was killed while writing it (``.<name>.partial``
whose process is gone, or older than a run finished since) or when an earlier
result was left behind while being replaced (``.<name>.replaced``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mcalloc.cli.common import add_command
from mcalloc.errors import OutputError

__all__ = ["register"]

EXAMPLES = """examples:
  mcalloc runs
  mcalloc runs results/default
  mcalloc runs --verify
  mcalloc clean --dry-run
  mcalloc clean results/
"""


def register(commands: Any) -> None:
    """Add ``runs`` and ``clean`` to the top-level sub-parsers."""
    runs = add_command(
        commands, "runs", "list results folders: complete, damaged, failed, running or stale", __doc__, EXAMPLES
    )
    runs.add_argument("folder", type=Path, nargs="?", default=Path("results"), help="where to look (default results)")
    runs.add_argument(
        "--verify", action="store_true", help="check every file's checksum against the manifest (reads every file)"
    )
    runs.set_defaults(handler=_runs)
    clean = add_command(commands, "clean", "remove stale folders left by killed runs", __doc__, EXAMPLES)
    clean.add_argument("folder", type=Path, nargs="?", default=Path("results"), help="where to look (default results)")
    clean.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    clean.set_defaults(handler=_clean)


def _survey(folder: Path, verify: bool = False) -> list[Any]:
    from mcalloc.results.inventory import survey

    if not folder.is_dir():
        what = "a file, not a folder" if folder.exists() else "no such folder"
        raise OutputError(f"{folder}: {what}; give the results folder (default results)")
    return survey(folder, verify)


def _runs(args: argparse.Namespace) -> int:
    import pandas as pd

    states = _survey(args.folder, args.verify)
    if not states:
        print(f"{args.folder}: no results folders")
        return 0
    table = pd.DataFrame(
        [
            {
                "folder": str(s.path),
                "state": s.state,
                "scenario": s.scenario,
                "started": s.started_at,
                "detail": s.detail,
            }
            for s in states
        ]
    )
    print(table.to_string(index=False))
    stale = sum(s.stale for s in states)
    if stale:
        print(f"\n{stale} stale folder(s): `mcalloc clean {args.folder}` removes them")
    damaged = sum(s.state == "damaged" for s in states)
    if damaged:
        print(
            f"\n{damaged} damaged folder(s): mcalloc refuses to read the files named in their detail "
            "(a changed paths.parquet only where it is read); run their scenarios again"
        )
    return 0


def _clean(args: argparse.Namespace) -> int:
    from mcalloc.results.inventory import remove_stale

    states = [s for s in _survey(args.folder) if s.stale]
    if not states:
        print(f"{args.folder}: nothing to clean")
        return 0
    if args.dry_run:
        for state in states:
            print(f"would remove {state.path} ({state.detail})")
        return 0
    removed, failed = remove_stale(states)
    for path in removed:
        print(f"removed {path}")
    if failed:
        path, reason = failed[0]
        others = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise OutputError(
            f"{path}: could not be removed ({reason}){others}; part of it may be gone: check its permissions and "
            "run mcalloc clean again"
        )
    return 0
