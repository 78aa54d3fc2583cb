"""``dasklle demo``: embed a generated swiss roll; write the zarr store, its labels and a PNG."""

from __future__ import annotations

import argparse

from . import common, embed

HELP = "embed a generated swiss roll on a local cluster; write a zarr store and a PNG."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-samples", type=int, default=5000, help="points to generate.")
    parser.add_argument("--out", default="dasklle-demo.zarr", help="output zarr store.")
    common.add_lle_flags(parser, n_neighbors=12, n_eigenvalues=10)
    common.add_output_flags(parser)
    common.add_scheduler_flags(parser)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from .. import datasets
    from ..plotting import plot_embedding
    from ..tasks import progress

    X, t = datasets.swiss_roll(args.n_samples, random_state=args.random_state)
    common.check_out(args, X)
    model = embed.estimator(args)
    with common.scheduler(args) as where:
        print(f"demo: swiss roll, {args.n_samples:,} points, on {where}")
        seconds = embed.fit(model, X)
        quality = embed.measure_quality(args, model)
        (labels,) = progress.compute(t)
    embed.report(model, args.out, seconds, quality)
    prefix = common.prefix(args.out)
    np.save(prefix + "-labels.npy", labels)
    plot_embedding(
        model.embedding_,
        prefix + ".png",
        labels=labels,
        label_name="position along the roll",
        title="swiss roll, LLE (dasklle)",
    )
    print(f"  plot: {prefix}.png (more: dasklle plot {args.out} --labels {prefix}-labels.npy)")
    return 0
