"""What several commands share: their flags, the scheduler they run on, the input and the output
checks, and the progress lines on stderr.

Nothing here imports dask, zarr or scikit-learn at module level: building the parser (``--help``)
stays fast; each function imports what it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator

from ..parameters import EIGEN_SOLVERS, METHODS, NEIGHBORS_ALGORITHMS

INPUT_HELP = (
    "the data, read lazily: a .npy file, a zarr array or group, HDF5 'file.h5:/dataset', "
    "AnnData 'file.h5ad' (dense X) or 'file.h5ad:X_pca' (an obsm entry), Parquet (a file or "
    "folder) or CSV."
)
OVERWRITE_HELP = (
    "empty an existing dasklle store at --out first instead of resuming from it (a file or a "
    "folder dasklle did not write is never deleted)."
)
CHUNK_ROWS_HELP = (
    "rows per block (default: about dasklle.tasks.block-bytes of input, fewer if the workers' "
    "memory asks for it)."
)
LOG_FORMAT = "[dasklle] %(message)s"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to a flag's help, except where there is no value to show: a switch
    (False) or a flag whose help says in words what None means."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def add_input_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help=INPUT_HELP)
    parser.add_argument(
        "--columns",
        help="comma-separated columns of a Parquet or CSV input (default: every numeric one).",
    )


def add_picture_flags(parser: argparse.ArgumentParser, images: str, data: str) -> None:
    """The flags of the commands that draw a store: its path, labels, images and data."""
    parser.add_argument("store", help="a zarr store written by dasklle.")
    parser.add_argument("--labels", help="labels to colour by: a .npy file or a zarr array.")
    parser.add_argument(
        "--image-shape", help=f"HEIGHTxWIDTH of one point as an image, e.g. 28x28: {images}."
    )
    parser.add_argument(
        "--data",
        help=f"the input data, for {data} (default: the input file the store records).",
    )


def image_shape(text: str) -> tuple[int, int]:
    """``--image-shape HEIGHTxWIDTH`` as two positive integers."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--image-shape must be HEIGHTxWIDTH, e.g. 28x28; got {text!r}.") from None
    if height < 1 or width < 1:
        raise ValueError(f"--image-shape must be positive; got {text!r}.")
    return height, width


def open_data(path: str | None, attributes: dict, n: int):
    """The input behind a store as a lazy dask array: ``--data`` or the path the store records."""
    from ..io.inputs import open_path

    source = path or attributes.get("input")
    if not isinstance(source, str):
        raise ValueError("--data: the store records no input file; give the data with --data.")
    X = open_path(source)
    if X.shape[0] != n:
        raise ValueError(f"--data {source!r} has {X.shape[0]:,} rows; the embedding has {n:,}.")
    return X


def add_scheduler_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where it runs")
    group.add_argument(
        "--scheduler",
        choices=("local-cluster", "threads", "synchronous"),
        default="local-cluster",
        help="local-cluster: start a dask LocalCluster on this machine; threads or synchronous: "
        "no cluster, dask's local schedulers (synchronous is for debugging).",
    )
    group.add_argument(
        "--scheduler-address",
        help="connect to a running dask scheduler at this address instead (e.g. tcp://host:8786).",
    )
    group.add_argument(
        "--scheduler-file",
        help="connect to the scheduler described by this file (as written by "
        "`dask scheduler --scheduler-file` or dask-jobqueue).",
    )
    group.add_argument(
        "--n-workers", type=int, help="local cluster workers (default: the cores, at most 4)."
    )
    group.add_argument(
        "--threads-per-worker", type=int, default=1, help="threads per local worker."
    )
    group.add_argument(
        "--memory-limit",
        default="auto",
        help="memory limit per local worker, e.g. 4GiB; auto is dask's: the machine's memory "
        "times threads-per-worker / cores.",
    )
    group.add_argument(
        "--dashboard",
        help="dashboard address for the local cluster, e.g. 127.0.0.1:8787 (default: no "
        "dashboard). It binds to localhost unless you name another interface.",
    )
    group.add_argument(
        "--eigen-placement",
        choices=("auto", "client", "workers"),
        help="where the amg eigen solve iterates on a cluster: client (this process, the "
        "fastest below millions of rows) or workers (this process then holds no n-row array); "
        "auto chooses by size (default: dasklle.eigen.placement, auto).",
    )


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument(
        "--quiet", action="store_true", help="no progress reports (only the final summary)."
    )
    group.add_argument(
        "--no-resume",
        action="store_true",
        help="recompute every stage even if the output store holds matching checkpoints "
        "(by default a rerun resumes after the last complete stage).",
    )
    group.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    group.add_argument(
        "--quality-sample",
        type=int,
        default=1000,
        help="points sampled to measure kNN recall, trustworthiness and continuity (0: skip).",
    )


def add_lle_flags(
    parser: argparse.ArgumentParser, n_neighbors: int = 10, n_eigenvalues: int | None = None
) -> None:
    """The estimator's flags; a command may choose other defaults for two of them."""
    group = parser.add_argument_group("embedding")
    group.add_argument("--n-neighbors", type=int, default=n_neighbors, help="neighbors per point.")
    group.add_argument("--n-components", type=int, default=2, help="embedding dimension.")
    add_solver_flags(group)
    spectrum = "bottom eigenvalues of M to keep for the spectrum plot"
    group.add_argument(
        "--n-eigenvalues",
        type=int,
        default=n_eigenvalues,
        help=f"{spectrum}." if n_eigenvalues else f"{spectrum} (default: n-components).",
    )


def add_solver_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """How the embedding is computed: the flags embed, demo and sweep share."""
    parser.add_argument("--method", choices=METHODS, default="standard", help="LLE variant.")
    parser.add_argument(
        "--eigen-solver", choices=EIGEN_SOLVERS, default="auto", help="eigen solver."
    )
    parser.add_argument(
        "--neighbors-algorithm",
        choices=NEIGHBORS_ALGORITHMS,
        default="auto",
        help="neighbor search.",
    )
    parser.add_argument("--reg", type=float, default=1e-3, help="regularisation.")
    parser.add_argument("--chunk-rows", type=int, help=CHUNK_ROWS_HELP)
    parser.add_argument("--random-state", type=int, default=0, help="seed.")


def solver_options(args: argparse.Namespace) -> dict:
    """The values of ``add_solver_flags``' flags, as keyword arguments of the estimator."""
    names = ("method", "eigen_solver", "neighbors_algorithm", "reg", "chunk_rows", "random_state")
    return {name: getattr(args, name) for name in names}


@contextlib.contextmanager
def scheduler(args: argparse.Namespace) -> Iterator[str]:
    """Set up the dask scheduler the flags ask for; yields a description of it."""
    import dask

    placement = getattr(args, "eigen_placement", None)
    with dask.config.set({"dasklle.eigen.placement": placement} if placement else {}):
        yield from _scheduler(args)


def _scheduler(args: argparse.Namespace) -> Iterator[str]:
    """``scheduler``'s body, under the eigen placement asked for."""
    import dask

    if args.scheduler_address or args.scheduler_file:
        from distributed import Client

        with Client(address=args.scheduler_address, scheduler_file=args.scheduler_file) as c:
            yield f"distributed scheduler {c.scheduler.address}"
        return
    if args.scheduler in ("threads", "synchronous"):
        with dask.config.set(scheduler=args.scheduler):
            yield f"dask {args.scheduler} scheduler"
        return
    from distributed import Client, LocalCluster

    _check_thread_memory(args.memory_limit, args.threads_per_worker)
    n_workers = args.n_workers or min(os.cpu_count() or 1, 4)
    with _interrupts_ignored(), warnings.catch_warnings():
        # another cluster on this machine holds port 8787; the scheduler takes another port for
        # its HTTP routes, and says so in a warning that concerns nobody here
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=args.threads_per_worker,
            memory_limit=args.memory_limit,
            host="127.0.0.1",
            dashboard_address=args.dashboard,
            processes=True,
        )
    with cluster, Client(cluster) as client, _quiet_after_interrupt(client):
        dashboard = client.dashboard_link if args.dashboard else "no dashboard"
        threads = args.threads_per_worker
        yield f"local cluster: {n_workers} workers x {threads} threads ({dashboard})"


def _check_thread_memory(memory_limit: str, threads: int) -> None:
    """Refuse local workers whose threads would get less than ``MIN_THREAD_MEMORY`` each."""
    from dask.utils import format_bytes, parse_bytes

    from ..tasks.memory import MIN_THREAD_MEMORY

    if str(memory_limit).lower() == "auto":
        return
    try:
        per_thread = parse_bytes(memory_limit) / max(1, threads)
    except ValueError:
        raise ValueError(f"--memory-limit {memory_limit!r} is not a size such as 4GiB.") from None
    if 0 < per_thread < MIN_THREAD_MEMORY:
        raise ValueError(
            f"--memory-limit {memory_limit} gives each worker thread {format_bytes(per_thread)}: "
            f"a worker's own footprint is about 220 MiB, and dasklle needs at least "
            f"{format_bytes(MIN_THREAD_MEMORY)} a thread. Raise --memory-limit or lower "
            "--threads-per-worker."
        )


@contextlib.contextmanager
def _interrupts_ignored() -> Iterator[None]:
    """SIGINT ignored while the local cluster's processes start (they inherit it).

    A terminal sends Ctrl-C to every process of the foreground group, the cluster's workers
    too, and each would print its own traceback. An ignored signal stays ignored in the
    processes started meanwhile (and Python then installs no KeyboardInterrupt handler in them);
    the command itself gets its handler back and stops the cluster on the way out.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _quiet_after_interrupt(client) -> Iterator[None]:
    """After Ctrl-C, the cluster's shutdown (cancelled tasks, closing comms) logs nothing, here
    or in the workers."""
    try:
        yield
    except KeyboardInterrupt:
        _silence_logs()
        with contextlib.suppress(Exception):
            client.run(_silence_logs, nanny=True)
            client.run(_silence_logs)
        raise


def _silence_logs() -> None:
    for name in ("distributed", "asyncio", "tornado"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def interrupted(args: argparse.Namespace) -> str:
    """The line Ctrl-C prints: what a resumable command kept, and how to go on."""
    from ..io.store import finished_stages

    out = getattr(args, "out", None)
    if args.command not in ("embed", "demo") or not out:
        return "interrupted."
    kept = finished_stages(out)
    if not kept:
        return f"interrupted before any stage finished; nothing kept in {out}."
    return (
        f"interrupted; {out} keeps the finished stages ({', '.join(kept)}): run the same "
        "command again to resume from there."
    )


def open_input(args: argparse.Namespace):
    """INPUT, checked before any cluster starts: its path, or its selected columns (lazy)."""
    from ..io.inputs import InputError, open_path

    columns = _columns(args)
    try:
        selected = open_path(args.input, columns)
    except InputError as exc:
        raise InputError(f"INPUT {exc}") from None
    return selected if columns else args.input


def _columns(args: argparse.Namespace) -> list[str] | None:
    return [c for c in args.columns.split(",") if c.strip()] if args.columns else None


def check_out(args: argparse.Namespace, source=None) -> None:
    """Refuse a bad --out before the cluster starts; with a source, also another input's store."""
    import dask

    from ..io.arrays import as_dask_input
    from ..io.store import check_output_store
    from ..pipeline import input_fingerprint

    def fingerprint() -> str:
        # four rows, read here without a cluster, only when --out holds another input's
        # fingerprint: a compressed chunk is decoded whole, and the memory it leaves in this
        # process would add to its peak (docs/design/inputs.md)
        with dask.config.set(scheduler="synchronous"):
            return input_fingerprint(as_dask_input(source, args.chunk_rows)[0])

    check_output_store(
        args.out, fingerprint if source is not None else None, name="--out",
        overwrite=args.overwrite,
    )  # fmt: skip


def prefix(store: str) -> str:
    """The path of files written beside a store: the store's path without its extension."""
    return os.path.splitext(os.path.normpath(store))[0]


@contextlib.contextmanager
def log_to_stderr(quiet: bool = False) -> Iterator[None]:
    """While a command runs, the ``dasklle`` logger's messages go to stderr as "[dasklle] ..."
    lines (stdout stays for results); only warnings with ``quiet``.

    The logger's own handlers are set aside meanwhile (one that ``verbose=True`` installed earlier
    in the process would print every line twice) and restored on exit, so that calling ``main``
    again starts from the same state.
    """
    logger = logging.getLogger("dasklle")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(logging.WARNING if quiet else logging.INFO)
    handlers, level = logger.handlers[:], logger.level
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.handlers = handlers
        logger.setLevel(level)
