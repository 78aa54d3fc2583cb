"""``dasklle embed``: embed a data file into a zarr store, then measure the embedding's quality.

Also the fit, quality and summary steps that ``dasklle demo`` shares.
"""

from __future__ import annotations

import argparse
import time

from . import common

HELP = "embed a data file (.npy, zarr, HDF5, .h5ad, Parquet, CSV) into a zarr store."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_input_flags(parser)
    parser.add_argument("--out", required=True, help="output zarr store.")
    common.add_lle_flags(parser)
    common.add_output_flags(parser)
    common.add_scheduler_flags(parser)


def run(args: argparse.Namespace) -> int:
    source = common.open_input(args)
    common.check_out(args, source)
    model = estimator(args)
    with common.scheduler(args) as where:
        print(f"running on {where}")
        seconds = fit(model, source)
        quality = measure_quality(args, model)
    report(model, args.out, seconds, quality)
    return 0


def estimator(args: argparse.Namespace):
    """The estimator the flags describe, writing to ``--out``."""
    from ..estimator import LocallyLinearEmbedding

    return LocallyLinearEmbedding(
        n_neighbors=args.n_neighbors,
        n_components=args.n_components,
        **common.solver_options(args),
        store=args.out,
        verbose=not args.quiet,
        resume=not args.no_resume,
        overwrite=args.overwrite,
        n_eigenvalues=args.n_eigenvalues,
    )


def fit(model, source) -> float:
    """Fit ``model`` to ``source``; the seconds it took."""
    start = time.perf_counter()
    model.fit(source)
    return time.perf_counter() - start


def measure_quality(args: argparse.Namespace, model) -> dict | None:
    """Sampled quality metrics, added to the store's metadata (None with --quality-sample 0)."""
    if args.quality_sample <= 0:
        return None
    from ..io.store import update_attributes
    from ..metrics import neighborhood_quality
    from ..tasks import progress

    with progress.stage("quality", verbose=not args.quiet):
        quality = neighborhood_quality(
            model._fit_X,
            model.embedding_,
            neighbor_indices=model.neighbor_indices_,
            n_neighbors=min(10, model.n_neighbors),
            sample_size=args.quality_sample,
            random_state=args.random_state,
            verbose=not args.quiet,
        )
    update_attributes(args.out, {"quality": quality})
    return quality


def report(model, store: str, seconds: float, quality: dict | None) -> None:
    """The summary on stdout: size, solvers, errors, stage times, quality, where it went."""
    n, d = model.embedding_.shape
    print(f"embedded {n:,} points into {d} dimensions in {seconds:.1f} s")
    print(f"  neighbors: {model.neighbors_algorithm_}, eigen solver: {model.eigen_solver_}")
    print(f"  reconstruction error: {model.reconstruction_error_:.3e}")
    print(
        f"  eigen residual: {model.eigen_residual_:.1e}, bound on the subspace's sine: "
        f"{model.eigen_error_bound_:.1e}"
        + (" (on the workers)" if model.eigen_placement_ == "workers" else "")
    )
    print("  stage seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in model.timings_.items()))
    if quality:
        print(
            "  quality (sample of {sample_size:,}): kNN recall {knn_recall:.3f}, "
            "trustworthiness {trustworthiness:.3f}, continuity {continuity:.3f}".format(**quality)
        )
    print(f"  written to {store}")
