"""What lies in a results folder: finished, failed, still being written, or left behind by a killed run.

A run builds its folder under ``.<name>.partial`` and renames it when done
(:mod:`mcalloc.results.writer`). A run killed outright (SIGKILL, a lost
machine) leaves that ``.partial`` folder behind. Its manifest records the
writing process (``pid``, ``host``): when that process no longer exists on
this machine, the folder is stale and ``mcalloc clean`` may delete it. A
folder from an older mcalloc, which recorded no writer, is stale once a
newer run in the same folder has finished since it started. Folders written
on another machine, or whose writer is alive, are never touched.
"""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

__all__ = ["FolderState", "remove_stale", "replaced_by_mcalloc", "survey", "writer_alive"]


@dataclass(frozen=True)
class FolderState:
    """One results folder: where it is, its state and why."""

    path: Path
    state: str
    scenario: str
    started_at: str
    detail: str

    @property
    def stale(self) -> bool:
        return self.state == "stale"


def _manifest(folder: Path) -> dict[str, Any]:
    """The folder's manifest; for a folder killed before writing one, the claim its writer left (pid, host, time)."""
    from mcalloc.results.writer import writer_record

    try:
        data = writer_record(folder)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def writer_alive(manifest: dict[str, Any]) -> bool | None:
    """Whether the process that writes the folder still runs; ``None`` when that cannot be known here.

    A process with the writer's pid that started after the folder did is
    another process that reused the number: the writer is gone.
    """
    pid, host = manifest.get("pid"), manifest.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return None
    try:
        created = psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.Error:
        return True  # exists, but cannot be inspected: assume it is the writer
    try:
        started = datetime.fromisoformat(str(manifest.get("started_at"))).timestamp()
    except ValueError:
        return True
    # started_at is written (to the second) just after the writer started
    return bool(created <= started + 1.0)


def survey(root: Path, verify: bool = False) -> list[FolderState]:
    """Every results folder under ``root`` (runs, backtests, their unfinished and failed versions), sorted by path.

    A complete folder missing a file its manifest lists is ``damaged``; with
    ``verify``, so is one whose files' checksums differ from the manifest's
    (every file is read: slow for a large ``paths.parquet``).
    """
    states = []
    folders = {manifest.parent for manifest in root.rglob("manifest.json")}
    folders |= {path for path in root.rglob(".*.partial") if path.is_dir()}
    folders |= {path for path in root.rglob(".*.replaced") if path.is_dir()}
    manifests = {folder: _manifest(folder) for folder in folders}
    newest: dict[Path, str] = {}  # per parent folder, when its last complete run finished
    for folder, manifest in manifests.items():
        if manifest.get("status") == "complete":
            newest[folder.parent] = max(newest.get(folder.parent, ""), str(manifest.get("finished_at") or ""))
    for folder in sorted(folders):
        manifest = manifests[folder]
        scenario = str(manifest.get("scenario", ""))
        started = str(manifest.get("started_at") or "")
        name = folder.name
        # only mcalloc's own hidden folders are unfinished by their name: a run a user sent to --out
        # pilot.partial is as complete as its manifest says
        hidden = name.startswith(".")
        if hidden and name.endswith(".replaced"):
            if replaced_by_mcalloc(folder):
                detail = "an earlier result left while replacing it"
                states.append(FolderState(folder, "stale", scenario, started, detail))
            else:  # another tool's, or the user's own: never deleted
                states.append(FolderState(folder, "unknown", scenario, started, "not an mcalloc folder"))
        elif hidden and name.endswith(".partial"):
            alive = writer_alive(manifest)
            later = newest.get(folder.parent, "")
            if alive:
                states.append(
                    FolderState(folder, "running", scenario, started, f"written by process {manifest['pid']}")
                )
            elif alive is False:
                states.append(FolderState(folder, "stale", scenario, started, "its writing process is gone"))
            elif manifest.get("host"):
                detail = f"written on {manifest['host']}: only that machine knows whether it still runs"
                states.append(FolderState(folder, "unknown", scenario, started, detail))
            elif started and later > started:
                states.append(FolderState(folder, "stale", scenario, started, "a later run here has finished since"))
            else:
                states.append(
                    FolderState(folder, "unknown", scenario, started, "written elsewhere or by an older mcalloc")
                )
        else:
            status = str(manifest.get("status", "unknown"))
            detail = str(manifest.get("error") or "")
            if not manifest and (folder / "manifest.json").is_file():
                # as load and report find it: a manifest that is not a run's JSON object
                status, detail = "damaged", "manifest.json is unreadable; run its scenario again"
            elif status == "complete":
                problem = _damage(folder, manifest, verify)
                if problem:
                    status, detail = "damaged", problem
            if manifest.get("kind") == "backtest":  # read by mcalloc report, not by load or compare
                detail = f"a backtest; {detail}" if detail else "a backtest"
            states.append(FolderState(folder, status, scenario, started, detail))
    return states


def _damage(folder: Path, manifest: dict[str, Any], verify: bool) -> str:
    """Why a complete folder cannot be loaded (a listed file missing; with ``verify``, changed); empty if it can."""
    from mcalloc.api import OPTIONAL_FILES, RunFolderError, check_files, check_manifest_fields

    try:  # as load finds it: a hand-edited value of the wrong kind
        check_manifest_fields(folder / "manifest.json", manifest)
    except RunFolderError as error:
        return str(error).removeprefix(f"{folder}/").replace("the folder is damaged: ", "")
    files = manifest.get("files")
    if not verify:
        listed = files if isinstance(files, dict) else {}
        missing = [name for name in listed if name not in OPTIONAL_FILES and not (folder / name).is_file()]
        return f"{missing[0]} missing; run its scenario again" if missing else ""
    try:
        check_files(folder, manifest)
    except RunFolderError as error:
        return str(error).removeprefix(f"{folder}/").replace("the folder is damaged: ", "")
    return ""


def replaced_by_mcalloc(folder: Path) -> bool:
    """Whether a ``.<name>.replaced`` folder is one mcalloc moved aside: a run's, backtest's or comparison's."""
    from mcalloc.results.writer import is_mcalloc_folder

    return is_mcalloc_folder(folder) or (folder / "comparison.csv").is_file()


def remove_stale(states: list[FolderState]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Delete the stale folders among ``states``: the paths removed, and those that could not be with the reason."""
    removed, failed = [], []
    for state in states:
        if state.stale:
            try:
                shutil.rmtree(state.path)
            except OSError as error:
                failed.append((state.path, error.strerror or type(error).__name__))
            else:
                removed.append(state.path)
    return removed, failed
