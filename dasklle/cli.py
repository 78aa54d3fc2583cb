"""The ``dasklle`` command line (also ``python -m dasklle``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence

import numpy as np

from ._validation import EIGEN_SOLVERS, METHODS, NEIGHBORS_ALGORITHMS


def _add_scheduler_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where it runs")
    group.add_argument(
        "--scheduler",
        choices=("local-cluster", "threads", "synchronous"),
        default="local-cluster",
        help="local-cluster: start a dask LocalCluster sized to this machine (default); threads "
        "or synchronous: no cluster, dask's local schedulers (synchronous is for debugging).",
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
        "--n-workers", type=int, default=None, help="local cluster workers (default: cores, max 4)."
    )
    group.add_argument(
        "--threads-per-worker", type=int, default=1, help="threads per local worker (default 1)."
    )
    group.add_argument(
        "--memory-limit",
        default="auto",
        help="memory limit per local worker, e.g. 4GiB (default auto: the machine's memory "
        "divided among workers).",
    )
    group.add_argument(
        "--dashboard",
        default=None,
        help="dashboard address for the local cluster, e.g. 127.0.0.1:8787 (default: none). "
        "It binds to localhost unless you name another interface.",
    )


def _add_lle_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("embedding")
    group.add_argument("--n-neighbors", type=int, default=10, help="neighbors per point (10).")
    group.add_argument("--n-components", type=int, default=2, help="embedding dimension (2).")
    group.add_argument("--method", choices=METHODS, default="standard", help="LLE variant.")
    group.add_argument(
        "--eigen-solver", choices=EIGEN_SOLVERS, default="auto", help="eigen solver (auto)."
    )
    group.add_argument(
        "--neighbors-algorithm",
        choices=NEIGHBORS_ALGORITHMS,
        default="auto",
        help="neighbor search (auto).",
    )
    group.add_argument("--reg", type=float, default=1e-3, help="regularisation (1e-3).")
    group.add_argument(
        "--chunk-rows", type=int, default=None, help="rows per block (default ~16 MB)."
    )
    group.add_argument("--random-state", type=int, default=0, help="seed (0).")


@contextlib.contextmanager
def _scheduler(args: argparse.Namespace) -> Iterator[str]:
    """Set up the dask scheduler the flags ask for; yields a description of it."""
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

    n_workers = args.n_workers or min(os.cpu_count() or 1, 4)
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=args.threads_per_worker,
        memory_limit=args.memory_limit,
        host="127.0.0.1",
        dashboard_address=args.dashboard,
        processes=True,
    )
    with cluster, Client(cluster) as client:
        dashboard = client.dashboard_link if args.dashboard else "no dashboard"
        threads = args.threads_per_worker
        yield f"local cluster: {n_workers} workers x {threads} threads ({dashboard})"


def _estimator(args: argparse.Namespace, store: str):
    from .estimator import LocallyLinearEmbedding

    return LocallyLinearEmbedding(
        n_neighbors=args.n_neighbors,
        n_components=args.n_components,
        method=args.method,
        eigen_solver=args.eigen_solver,
        neighbors_algorithm=args.neighbors_algorithm,
        reg=args.reg,
        chunk_rows=args.chunk_rows,
        random_state=args.random_state,
        store=store,
    )


def _open_input(path: str):
    """A lazy array for a .npy file (memory-mapped) or a zarr array/store."""
    if not os.path.exists(path):
        raise ValueError(f"INPUT {path!r} does not exist.")
    if path.endswith(".npy"):
        return np.load(path, mmap_mode="r", allow_pickle=False)
    from ._validation import open_zarr_array

    return open_zarr_array(path, "INPUT")


def _report(model, store: str, seconds: float) -> None:
    n, d = model.embedding_.shape
    print(f"embedded {n:,} points into {d} dimensions in {seconds:.1f} s")
    print(f"  neighbors: {model.neighbors_algorithm_}, eigen solver: {model.eigen_solver_}")
    print(f"  reconstruction error: {model.reconstruction_error_:.3e}")
    print(f"  eigen residual: {model.eigen_residual_:.1e}")
    print("  stage seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in model.timings_.items()))
    print(f"  written to {store}")


def cmd_embed(args: argparse.Namespace) -> int:
    import dask.array as da

    source = _open_input(args.input)
    if isinstance(source, np.ndarray):  # a memory map: wrap it so it is read block by block
        source = da.from_array(source, chunks=(args.chunk_rows or "auto", -1))
    model = _estimator(args, args.out)
    with _scheduler(args) as where:
        print(f"running on {where}")
        start = time.perf_counter()
        model.fit(source)
    _report(model, args.out, time.perf_counter() - start)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from . import datasets
    from .plotting import plot_embedding

    X, t = datasets.swiss_roll(args.n_samples, random_state=args.random_state)
    model = _estimator(args, args.out)
    with _scheduler(args) as where:
        print(f"demo: swiss roll, {args.n_samples:,} points, on {where}")
        start = time.perf_counter()
        model.fit(X)
        seconds = time.perf_counter() - start
        labels = t.compute()
    _report(model, args.out, seconds)
    png = os.path.splitext(args.out.rstrip("/"))[0] + ".png"
    plot_embedding(model.embedding_, png, labels=labels, title="swiss roll, LLE (dasklle)")
    print(f"  plot: {png}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .store import read_embedding

    embedding, attributes = read_embedding(args.store)
    print(f"store: {args.store}")
    print(f"embedding: {embedding.shape[0]:,} x {embedding.shape[1]} ({embedding.dtype})")
    print(json.dumps(attributes, indent=2, sort_keys=True))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dasklle",
        description="Locally Linear Embedding on Dask: chunked, out of core, scikit-learn "
        "compatible.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo",
        help="embed a generated swiss roll on a local cluster and write a zarr store + PNG.",
    )
    demo.add_argument("--n-samples", type=int, default=5000, help="points to generate.")
    demo.add_argument("--out", default="dasklle-demo.zarr", help="output zarr store.")
    _add_lle_flags(demo)
    _add_scheduler_flags(demo)
    demo.set_defaults(func=cmd_demo, n_neighbors=12)

    embed = commands.add_parser("embed", help="embed a .npy file or a zarr array into a store.")
    embed.add_argument("input", help="a .npy file (memory-mapped) or a zarr array/store.")
    embed.add_argument("--out", required=True, help="output zarr store.")
    _add_lle_flags(embed)
    _add_scheduler_flags(embed)
    embed.set_defaults(func=cmd_embed)

    info = commands.add_parser("info", help="show what an embedding store holds.")
    info.add_argument("store", help="a zarr store written by dasklle.")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, NotImplementedError, FileNotFoundError) as exc:
        print(f"dasklle {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
