"""``dasklle info``: what a store holds, in a few lines, then all its metadata as JSON."""

from __future__ import annotations

import argparse
import json

HELP = "show what a store holds."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="a zarr store written by dasklle.")


def run(args: argparse.Namespace) -> int:
    from ..io.store import read_attributes

    attributes = read_attributes(args.store)
    print(f"store: {args.store}")
    if attributes.get("complete"):
        _summary(args.store, attributes)
    else:
        print("embedding: none (no complete embedding in this store)")
    if "sweep" in attributes:
        print(f"sweep: {len(attributes['sweep'])} (n_neighbors, n_components) pairs")
    print("all metadata:")
    print(json.dumps(attributes, indent=2, sort_keys=True))
    return 0


def _summary(store: str, attributes: dict) -> None:
    """The embedding's shape, parameters, solvers, error, stage times and quality."""
    from ..io.store import read_embedding

    embedding, _ = read_embedding(store)
    print(f"embedding: {embedding.shape[0]:,} x {embedding.shape[1]} ({embedding.dtype})")
    params = attributes.get("parameters", {})
    print(
        f"method: {params.get('method')}, n_neighbors: {params.get('n_neighbors')}, "
        f"neighbors: {attributes.get('neighbors_algorithm')}, "
        f"eigen solver: {attributes.get('eigen_solver')} "
        f"(residual {attributes.get('eigen_residual', float('nan')):.1e}, "
        f"bound on the sine {_number(attributes.get('eigen_error_bound'))})"
    )
    print(f"reconstruction error: {attributes.get('reconstruction_error'):.3e}")
    timings = attributes.get("timings", {})
    print("stage seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
    if "quality" in attributes:
        print("quality: " + ", ".join(f"{k} {v:.4g}" for k, v in attributes["quality"].items()))


def _number(value) -> str:
    """A stored float, or "none" where the store holds none (older stores, no bound)."""
    return "none" if value is None else f"{value:.1e}"
