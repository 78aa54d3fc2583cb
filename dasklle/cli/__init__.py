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


def _add_input_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help=INPUT_HELP)
    parser.add_argument(
        "--columns",
        help="comma-separated columns of a Parquet or CSV input (default: every numeric one).",
    )


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


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
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
    group.add_argument(
        "--n-eigenvalues",
        type=int,
        default=None,
        help="bottom eigenvalues of M to keep for the spectrum plot (default: n-components + 8).",
    )


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
    from ..estimator import LocallyLinearEmbedding

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
        verbose=not getattr(args, "quiet", False),
        resume=not getattr(args, "no_resume", False),
        overwrite=args.overwrite,
        n_eigenvalues=getattr(args, "n_eigenvalues", None),
    )


def _open_input(args: argparse.Namespace):
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


def _check_out(args: argparse.Namespace, source=None) -> None:
    """Refuse a bad --out before the cluster starts; with a source, also another input's store."""
    import dask

    from ..io.arrays import as_dask_input
    from ..io.store import check_output_store
    from ..pipeline import input_fingerprint

    fingerprint = None
    if source is not None:  # reads four rows: cheap without a cluster
        with dask.config.set(scheduler="threads"):
            fingerprint = input_fingerprint(as_dask_input(source, args.chunk_rows)[0])
    check_output_store(args.out, fingerprint, name="--out", overwrite=args.overwrite)


def _quality(args, source, model, store_path: str) -> dict | None:
    """Sampled quality metrics, added to the store's metadata."""
    if args.quality_sample <= 0:
        return None
    from ..io.store import update_attributes
    from ..metrics import neighborhood_quality

    quality = neighborhood_quality(
        model._fit_X,
        model.embedding_,
        neighbor_indices=model.neighbor_indices_,
        n_neighbors=min(10, model.n_neighbors),
        sample_size=args.quality_sample,
        random_state=args.random_state,
    )
    update_attributes(store_path, {"quality": quality})
    return quality


def _report(model, store: str, seconds: float, quality: dict | None) -> None:
    n, d = model.embedding_.shape
    print(f"embedded {n:,} points into {d} dimensions in {seconds:.1f} s")
    print(f"  neighbors: {model.neighbors_algorithm_}, eigen solver: {model.eigen_solver_}")
    print(f"  reconstruction error: {model.reconstruction_error_:.3e}")
    print(f"  eigen residual: {model.eigen_residual_:.1e}")
    print("  stage seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in model.timings_.items()))
    if quality:
        print(
            "  quality (sample of {sample_size:,}): kNN recall {knn_recall:.3f}, "
            "trustworthiness {trustworthiness:.3f}, continuity {continuity:.3f}".format(**quality)
        )
    print(f"  written to {store}")


def cmd_embed(args: argparse.Namespace) -> int:
    source = _open_input(args)
    _check_out(args, source)
    model = _estimator(args, args.out)
    with _scheduler(args) as where:
        print(f"running on {where}")
        start = time.perf_counter()
        model.fit(source)
        seconds = time.perf_counter() - start
        quality = _quality(args, source, model, args.out)
    _report(model, args.out, seconds, quality)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .. import datasets
    from ..plotting import plot_embedding
    from ..tasks import progress

    X, t = datasets.swiss_roll(args.n_samples, random_state=args.random_state)
    _check_out(args, X)
    model = _estimator(args, args.out)
    with _scheduler(args) as where:
        print(f"demo: swiss roll, {args.n_samples:,} points, on {where}")
        start = time.perf_counter()
        model.fit(X)
        seconds = time.perf_counter() - start
        quality = _quality(args, X, model, args.out)
        (labels,) = progress.compute(t)
    _report(model, args.out, seconds, quality)
    prefix = _prefix(args.out)
    np.save(prefix + "-labels.npy", labels)
    plot_embedding(
        model.embedding_, prefix + ".png", labels=labels, title="swiss roll, LLE (dasklle)"
    )
    print(f"  plot: {prefix}.png (more: dasklle plot {args.out} --labels {prefix}-labels.npy)")
    return 0


def _prefix(store: str) -> str:
    return os.path.splitext(os.path.normpath(store))[0]


def _parse_grid(text: str, name: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(
            f"{name} must be a comma-separated list of integers; got {text!r}."
        ) from None
    if not values:
        raise ValueError(f"{name} must list at least one integer; got {text!r}.")
    return values


def cmd_sweep(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ..io.store import clear_store, update_attributes
    from ..plotting import plot_sweep
    from ..sweep import as_grid, reconstruction_error_grid, write_csv

    ks = _parse_grid(args.n_neighbors, "--n-neighbors")
    ds = _parse_grid(args.n_components, "--n-components")
    source = _open_input(args)
    _check_out(args)  # no input check: a sweep is recorded beside any embedding of the store
    with _scheduler(args) as where:
        print(f"sweep on {where}: n_neighbors {ks} x n_components {ds}")
        rows = reconstruction_error_grid(
            source,
            ks,
            ds,
            method=args.method,
            reg=args.reg,
            eigen_solver=args.eigen_solver,
            neighbors_algorithm=args.neighbors_algorithm,
            random_state=args.random_state,
            chunk_rows=args.chunk_rows,
            verbose=not args.quiet,
        )
    prefix = _prefix(args.out)
    write_csv(rows, prefix + ".csv")
    plot_sweep(*as_grid(rows), prefix + ".png")
    if args.overwrite:
        clear_store(args.out, name="--out")
    update_attributes(args.out, {"sweep": [asdict(r) for r in rows]})
    for r in rows:
        print(f"  k={r.n_neighbors:3d} d={r.n_components:3d}  error {r.reconstruction_error:.3e}")
    print(f"  table: {prefix}.csv, heatmap: {prefix}.png, recorded in {args.out}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .. import plotting
    from ..eigen.cost import cost_matrix, weight_matrix
    from ..io.store import read_array, read_attributes, read_embedding
    from ..sweep import SweepRow, as_grid

    attributes = read_attributes(args.store)
    prefix = args.out_prefix or _prefix(args.store)
    labels = _load_labels(args.labels) if args.labels else None
    written = []
    if attributes.get("complete"):
        embedding, _ = read_embedding(args.store)
        if labels is not None and len(labels) != len(embedding):
            raise ValueError(
                f"--labels has {len(labels):,} entries; the embedding has {len(embedding):,} rows."
            )
        plotting.plot_embedding(embedding, prefix + "-embedding.png", labels=labels)
        written.append(prefix + "-embedding.png")
        d = embedding.shape[1]
        plotting.plot_spectrum(attributes["eigenvalues"], d, prefix + "-spectrum.png")
        written.append(prefix + "-spectrum.png")
        neighbors = read_array(args.store, "stages/neighbors/indices")
        weights = read_array(args.store, "stages/weights/weights")
        if weights is not None and len(embedding) <= plotting.MATRIX_MAX_ROWS:
            M = cost_matrix(weight_matrix(neighbors, weights))
            plotting.plot_cost_matrix(M, prefix + "-matrix.png", labels=labels)
            written.append(prefix + "-matrix.png")
    if "sweep" in attributes:
        rows = [SweepRow(**row) for row in attributes["sweep"]]
        plotting.plot_sweep(*as_grid(rows), prefix + "-sweep.png")
        written.append(prefix + "-sweep.png")
    if not written:
        raise ValueError(f"store {args.store!r} holds neither a complete embedding nor a sweep.")
    for path in written:
        print(f"wrote {path}")
    return 0


def _load_labels(path: str) -> np.ndarray:
    if path.endswith(".npy"):
        if not os.path.exists(path):
            raise ValueError(f"--labels {path!r} does not exist.")
        return np.load(path, allow_pickle=False)
    import zarr

    try:
        return np.asarray(zarr.open_array(store=path, mode="r")[...])
    except Exception as exc:
        raise ValueError(
            f"--labels: cannot read {path!r} as .npy or a zarr array ({exc})."
        ) from exc


def cmd_info(args: argparse.Namespace) -> int:
    from ..io.store import read_attributes, read_embedding

    attributes = read_attributes(args.store)
    print(f"store: {args.store}")
    if attributes.get("complete"):
        embedding, _ = read_embedding(args.store)
        print(f"embedding: {embedding.shape[0]:,} x {embedding.shape[1]} ({embedding.dtype})")
        params = attributes.get("parameters", {})
        print(
            f"method: {params.get('method')}, n_neighbors: {params.get('n_neighbors')}, "
            f"neighbors: {attributes.get('neighbors_algorithm')}, "
            f"eigen solver: {attributes.get('eigen_solver')} "
            f"(residual {attributes.get('eigen_residual', float('nan')):.1e})"
        )
        print(f"reconstruction error: {attributes.get('reconstruction_error'):.3e}")
        timings = attributes.get("timings", {})
        print("stage seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
        if "quality" in attributes:
            print("quality: " + ", ".join(f"{k} {v:.4g}" for k, v in attributes["quality"].items()))
    else:
        print("embedding: none (no complete embedding in this store)")
    if "sweep" in attributes:
        print(f"sweep: {len(attributes['sweep'])} (n_neighbors, n_components) pairs")
    print("all metadata:")
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

    sub = dict(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    demo = commands.add_parser(
        "demo",
        help="embed a generated swiss roll on a local cluster; write a zarr store and a PNG.",
        **sub,
    )
    demo.add_argument("--n-samples", type=int, default=5000, help="points to generate.")
    demo.add_argument("--out", default="dasklle-demo.zarr", help="output zarr store.")
    _add_lle_flags(demo)
    _add_output_flags(demo)
    _add_scheduler_flags(demo)
    demo.set_defaults(func=cmd_demo, n_neighbors=12, n_eigenvalues=10)

    embed = commands.add_parser(
        "embed",
        help="embed a data file (.npy, zarr, HDF5, .h5ad, Parquet, CSV) into a zarr store.",
        **sub,
    )
    _add_input_flags(embed)
    embed.add_argument("--out", required=True, help="output zarr store.")
    _add_lle_flags(embed)
    _add_output_flags(embed)
    _add_scheduler_flags(embed)
    embed.set_defaults(func=cmd_embed)

    sweep = commands.add_parser(
        "sweep",
        help="reconstruction error over a grid of n_neighbors x n_components (kNN computed once).",
        **sub,
    )
    _add_input_flags(sweep)
    sweep.add_argument("--n-neighbors", default="5,8,12,20", help="comma-separated k values.")
    sweep.add_argument("--n-components", default="2,4,6,8,10", help="comma-separated d values.")
    sweep.add_argument(
        "--out",
        default="sweep.zarr",
        help="zarr store to record the sweep in (an embedding already there is kept); the CSV "
        "table and the heatmap PNG are written next to it.",
    )
    for flag, kwargs in (
        ("--method", dict(choices=METHODS, default="standard", help="LLE variant.")),
        ("--eigen-solver", dict(choices=EIGEN_SOLVERS, default="auto", help="eigen solver.")),
        (
            "--neighbors-algorithm",
            dict(choices=NEIGHBORS_ALGORITHMS, default="auto", help="neighbor search."),
        ),
        ("--reg", dict(type=float, default=1e-3, help="regularisation.")),
        ("--chunk-rows", dict(type=int, default=None, help="rows per block (default ~16 MB).")),
        ("--random-state", dict(type=int, default=0, help="seed.")),
        ("--quiet", dict(action="store_true", help="no progress reports.")),
        (
            "--overwrite",
            dict(
                action="store_true",
                help="empty an existing dasklle store at --out (its embedding too) before "
                "recording the sweep (a file or a folder dasklle did not write is never deleted).",
            ),
        ),
    ):
        sweep.add_argument(flag, **kwargs)
    _add_scheduler_flags(sweep)
    sweep.set_defaults(func=cmd_sweep)

    plot = commands.add_parser(
        "plot",
        help="PNGs of a store: embedding scatter, spectrum of M, M ordered by label, sweep.",
        **sub,
    )
    plot.add_argument("store", help="a zarr store written by dasklle embed/demo/sweep.")
    plot.add_argument("--labels", help="labels to colour by: a .npy file or a zarr array.")
    plot.add_argument(
        "--out-prefix", help="prefix of the PNG files (default: the store path without .zarr)."
    )
    plot.set_defaults(func=cmd_plot)

    info = commands.add_parser("info", help="show what a store holds.", **sub)
    info.add_argument("store", help="a zarr store written by dasklle.")
    info.set_defaults(func=cmd_info)

    from .. import bench

    bench_parser = commands.add_parser(
        "bench",
        help="benchmark cases, side by side with scikit-learn (--vs sklearn), each in a fresh "
        "process.",
        **sub,
    )
    bench.build_parser(bench_parser)
    bench_parser.set_defaults(func=bench.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except (ValueError, TypeError, NotImplementedError, FileNotFoundError) as exc:
        print(f"dasklle {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
