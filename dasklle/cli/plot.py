"""``dasklle plot``: PNGs of what a store holds (embedding, spectrum of M, M ordered by label,
local reconstructions, weight preservation, sweep)."""

from __future__ import annotations

import argparse
import os

from . import common

HELP = (
    "PNGs of a store: embedding, spectrum of M, M ordered by label, local reconstructions, "
    "weight preservation, sweep."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_picture_flags(
        parser, images="reconstructions drawn as images", data="the reconstruction views"
    )
    parser.add_argument(
        "--out-prefix",
        help="prefix of the PNG files (default: the store's path without its extension).",
    )


def run(args: argparse.Namespace) -> int:
    from ..io.store import read_attributes
    from ..sweep import SweepRow, plot

    attributes = read_attributes(args.store)
    prefix = args.out_prefix or common.prefix(args.store)
    written = []
    if attributes.get("complete"):
        written += _plot_embedding(args, attributes, prefix)
    elif args.labels:
        load_labels(args.labels)  # a wrong --labels is an error whatever the store holds
    if "sweep" in attributes:
        rows = [SweepRow(**row) for row in attributes["sweep"]]
        plot(rows, prefix + "-sweep.png")
        written.append(prefix + "-sweep.png")
    if not written:
        raise ValueError(f"store {args.store!r} holds neither a complete embedding nor a sweep.")
    for path in written:
        print(f"wrote {path}")
    return 0


def _plot_embedding(args, attributes: dict, prefix: str) -> list[str]:
    """The scatter, the spectrum, (for small stores with weights) the cost matrix, and the
    weight views; the store's arrays read once for all of them."""
    from .. import plotting
    from ..eigen.cost import cost_matrix, weight_matrix
    from ..io.store import read_array, read_embedding

    embedding, _ = read_embedding(args.store)
    labels = load_labels(args.labels, len(embedding)) if args.labels else None
    plotting.plot_embedding(embedding, prefix + "-embedding.png", labels=labels)
    d = embedding.shape[1]
    plotting.plot_spectrum(
        attributes["eigenvalues"],
        d,
        prefix + "-spectrum.png",
        estimates=attributes.get("eigenvalue_estimates"),
    )
    written = [prefix + "-embedding.png", prefix + "-spectrum.png"]
    neighbors = read_array(args.store, "stages/neighbors/indices")
    weights = read_array(args.store, "stages/weights/weights")
    if weights is None:  # the weight pictures are of standard LLE
        return written
    if len(embedding) <= plotting.MATRIX_MAX_ROWS:
        M = cost_matrix(weight_matrix(neighbors, weights))
        plotting.plot_cost_matrix(M, prefix + "-matrix.png", labels=labels)
        written.append(prefix + "-matrix.png")
    return written + _plot_weights(args, attributes, prefix, embedding, neighbors, weights)


def _plot_weights(args, attributes, prefix, embedding, neighbors, weights) -> list[str]:
    """The local-reconstruction and weight-preservation views, where the data can be read."""
    from .. import plotting

    shape = common.image_shape(args.image_shape) if args.image_shape else None
    try:
        X = common.open_data(args.data, attributes, len(embedding))
    except (ValueError, FileNotFoundError) as exc:
        if args.data:
            raise
        print(f"no reconstruction views: {exc}")
        return []
    written = [prefix + "-reconstruction.png", prefix + "-preservation.png"]
    plotting.plot_reconstructions(X, neighbors, weights, written[0], image_shape=shape)
    plotting.plot_weight_preservation(X, embedding, neighbors, weights, written[1])
    return written


def load_labels(path: str, n: int | None = None):
    """Labels from a .npy file or a zarr array, as a numpy array; with n, one for each of n rows."""
    import numpy as np

    if path.endswith(".npy"):
        if not os.path.exists(path):
            raise ValueError(f"--labels {path!r} does not exist.")
        labels = np.load(path, allow_pickle=False)
    else:
        import zarr

        try:
            labels = np.asarray(zarr.open_array(store=path, mode="r")[...])
        except Exception as exc:
            raise ValueError(
                f"--labels: cannot read {path!r} as .npy or a zarr array ({exc})."
            ) from exc
    if n is not None and len(labels) != n:
        raise ValueError(f"--labels has {len(labels):,} entries; the embedding has {n:,} rows.")
    return labels
