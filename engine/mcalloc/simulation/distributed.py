"""Simulating on a dask.distributed cluster: connect to a scheduler, or start a local cluster.

joblib's ``dask`` backend sends the same tasks as the local backend (runs of
consecutive chunks, each seeded by its index) to the cluster's workers, and
hands the results back in submission order, so the numbers are those of a
local run with the same seed. See docs/batch.md for starting a scheduler and
workers on several machines or under SLURM or Kubernetes.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from joblib import effective_n_jobs

from mcalloc.errors import ClusterError, ConfigError, signals_held

__all__ = ["cluster_failures", "dask_client"]


async def _started(client: Any) -> None:
    await client


def _handshake(scheduler: str, connect_timeout: float, deadline: float) -> None:
    """Connect once and close, within ``deadline`` seconds.

    distributed bounds the TCP connection by its timeout, but not the
    handshake after it: a port that accepts and never answers (a dashboard,
    a proxy) would hold a synchronous ``Client`` for ever. The asynchronous
    client here is cancelled at the deadline instead.
    """
    import asyncio

    from distributed import Client

    async def attempt() -> None:
        client = Client(scheduler, asynchronous=True, timeout=connect_timeout, set_as_default=False)
        try:
            await asyncio.wait_for(_started(client), deadline)
        finally:
            # closed here, in its own loop: one left to the garbage collector warns on stderr
            await asyncio.wait_for(client.close(), connect_timeout)

    # a loop of its own in a thread of its own: the caller's thread may be running one (a notebook's)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, attempt()).result()


@contextmanager
def dask_client(scheduler: str | None, n_workers: int = -1, connect_timeout: float = 10.0) -> Iterator[object]:
    """A ``distributed.Client`` for the duration of the block.

    With ``scheduler`` (``tcp://host:port``) it connects to that cluster;
    without, it starts a ``LocalCluster`` of ``n_workers`` single-threaded
    worker processes on loopback (counted as joblib counts ``n_jobs``: ``-1``
    one per core) and closes it after.
    """
    from distributed import Client, LocalCluster

    if scheduler is not None:
        deadline = 2 * connect_timeout
        try:
            _handshake(scheduler, connect_timeout, deadline)
            client = Client(scheduler, timeout=connect_timeout)
        except TimeoutError:
            raise ConfigError(
                f"simulation.scheduler: {scheduler} accepted the connection but did not answer as a dask scheduler "
                f"within {deadline:.0f} s; give the scheduler's own address (port 8786 unless it was started with "
                "another; 8787 is its dashboard)"
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"simulation.scheduler: cannot reach the dask scheduler at {scheduler} ({type(exc).__name__}); "
                "start it with `dask scheduler` and workers with `dask worker ADDRESS`, or drop the scheduler "
                "to use a local cluster"
            ) from None
        except Exception as exc:  # noqa: BLE001 - whatever answers there (ssh, a web server) is not a scheduler
            raise ConfigError(
                f"simulation.scheduler: {scheduler} answered, but not as a dask scheduler ({type(exc).__name__}); "
                "give the scheduler's own address (port 8786 unless it was started with another)"
            ) from None
        try:
            _check_workers_code(client, scheduler)
            yield client
        finally:
            # a scheduler gone mid-run makes the client's reconnection loop log a traceback as it is closed
            with _logs_held():
                client.close()
        return
    count = effective_n_jobs(n_workers)  # -1: one per core, -2: all but one, as joblib counts
    # the cluster's processes start with SIGINT held, as joblib's workers do: a terminal's Ctrl-C reaches only
    # this process, which stops the run, instead of every worker printing its own traceback
    # the standard library's resource tracker lifts the hold in the thread that starts it (workers.py): running
    # before, it is not started again by the nanny's first worker, which would then start without the hold
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    cluster = None
    with _main_not_rerun():
        try:
            with signals_held(signal.SIGINT):
                cluster = LocalCluster(
                    n_workers=count,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    # the scheduler's HTTP server (its health routes) starts even without a dashboard, on port 8787
                    # unless told otherwise, and warns on stderr when another cluster or Jupyter holds that port
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    # the workers' and nannies' warnings as a run stops (tasks cancelled, a worker killed after
                    # 4 s) are not the user's to act on: the run says in one line why it stopped
                    silence_logs=logging.ERROR,
                )
        except BaseException:  # a Ctrl-C held while it started arrives as the hold ends: close what started
            if cluster is not None:
                cluster.close()
            raise
        with cluster, Client(cluster) as client:
            yield client


@contextmanager
def _main_not_rerun() -> Iterator[None]:
    """The caller's script kept from the local cluster's worker processes while it runs.

    multiprocessing starts each worker (and each a nanny restarts) as a fresh
    interpreter that first runs the parent's ``__main__`` again, found by its
    ``__spec__`` or ``__file__``. A script calling ``mcalloc.run`` without an
    ``if __name__ == "__main__":`` guard then ran the whole run again in every
    worker, which failed and took the cluster with it. The workers need
    nothing of the script (their tasks are mcalloc's), so for the block the
    script is unnamed, as an interactive session's is, and joblib's own
    workers behave the same.
    """
    import sys

    main = sys.modules.get("__main__")
    names: tuple[str, ...] = ("__file__", "__spec__")
    saved: dict[str, Any] = {key: main.__dict__[key] for key in names if main is not None and key in main.__dict__}
    if main is not None:
        main.__dict__.pop("__file__", None)
        if "__spec__" in saved:
            main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)


@contextmanager
def _logs_held() -> Iterator[None]:
    """distributed's and tornado's own log records held back under the block (their tracebacks, not mcalloc's line).

    distributed configures some of its loggers (distributed.client,
    tornado.application) with levels and handlers of their own that do not
    pass through their parents': each is held back.
    """
    import logging

    names = [
        name
        for name in ("distributed", "tornado", *logging.root.manager.loggerDict)
        if name.split(".")[0] in ("distributed", "tornado")
    ]
    loggers = [logging.getLogger(name) for name in dict.fromkeys(names)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _code_digest() -> str:
    """A digest of mcalloc's modules' source, which decides the numbers a worker computes (installed or not)."""
    import hashlib
    from pathlib import Path

    import mcalloc

    digest = hashlib.sha256()
    root = Path(mcalloc.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return f"source {digest.hexdigest()[:12]}"


def _check_workers_code(client: Any, scheduler: str) -> None:
    """Refuse a cluster whose workers run other mcalloc code than this process: their numbers could differ.

    Workers that join later are not asked; docs/batch.md says to start them
    from the same installation.
    """
    mine = _code_digest()
    try:
        theirs = client.run(_code_digest)
    except Exception as exc:  # noqa: BLE001 - a worker that cannot import mcalloc raises whatever it raises
        raise ConfigError(
            f"simulation.scheduler: the workers of {scheduler} cannot run mcalloc ({type(exc).__name__}); install "
            "this mcalloc where they run (pip install of the same checkout) and start them again"
        ) from None
    other = sorted({code for code in theirs.values() if code != mine})
    if other:
        raise ConfigError(
            f"simulation.scheduler: the workers of {scheduler} run mcalloc {', '.join(other)}, this process {mine}; "
            "their numbers could differ: install the same mcalloc on the workers and start them again"
        )


@contextmanager
def cluster_failures() -> Iterator[None]:
    """The cluster failing under the block as one line (:class:`ClusterError`), its own logs' tracebacks held back.

    A scheduler lost mid-run cancels the run's futures, one with no workers
    times out in joblib, a worker killed again and again gives up its task;
    distributed logs each with a traceback before the error arrives.
    """
    import concurrent.futures

    from distributed import KilledWorker, get_client
    from distributed.comm.core import CommClosedError

    client = get_client()
    local = getattr(client, "cluster", None) is not None  # a LocalCluster dask_client started
    try:
        with _logs_held():
            yield
    except (concurrent.futures.CancelledError, CommClosedError, KilledWorker, TimeoutError) as exc:
        # the first sentence: joblib's no-worker message goes on to a code example its first line cuts off
        reason = str(exc).strip().splitlines()[0].split(". ")[0] if str(exc).strip() else ""
        cause = f"{type(exc).__name__}{': ' + reason if reason else ''}"
        if local:
            raise ClusterError(
                f"simulation.backend: the local dask cluster started for this run failed during it ({cause}); if a "
                "worker ran out of memory, lower simulation.n_jobs or simulation.chunk_size, then run again"
            ) from None
        raise ClusterError(
            f"simulation.scheduler: the dask cluster at {client.scheduler.address} failed during the run ({cause}); "
            "check that its scheduler and workers are up, then run again"
        ) from None
