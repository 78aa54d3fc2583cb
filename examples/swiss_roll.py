"""Swiss roll end to end: a local cluster, the embedding in a zarr store, and pictures.

    python examples/swiss_roll.py [--n-samples 20000] [--out-dir example-output]

Writes swiss_roll.zarr (embedding + metadata), swiss_roll-embedding.png (coloured by the
position along the roll) and swiss_roll-new-points.png (held-out points mapped with transform).
"""

import argparse
import os

import numpy as np
from distributed import Client, LocalCluster

from dasklle import LocallyLinearEmbedding, datasets
from dasklle.metrics import neighborhood_quality
from dasklle.plotting import plot_embedding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=20_000)
    parser.add_argument("--out-dir", default="example-output")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, "swiss_roll")

    X, t = datasets.swiss_roll(args.n_samples, random_state=0, chunks=5_000)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        lle = LocallyLinearEmbedding(
            n_neighbors=12, n_components=2, random_state=0, store=out + ".zarr", verbose=True
        )
        Y = lle.fit_transform(X)
        quality = neighborhood_quality(X, Y, neighbor_indices=lle.neighbor_indices_)
        # New points from the same roll, never seen by fit, mapped through the fitted embedding.
        X_new, t_new = datasets.swiss_roll(2_000, random_state=1)
        Y_new = lle.transform(X_new.compute())
        t, t_new = t.compute(), t_new.compute()

    print(f"eigen solver {lle.eigen_solver_}, reconstruction error {lle.reconstruction_error_:.2e}")
    print("quality: " + ", ".join(f"{k} {v:.3g}" for k, v in quality.items()))
    along = "position along the roll"
    plot_embedding(
        Y, out + "-embedding.png", labels=t, label_name=along, title="Swiss roll: LLE embedding"
    )
    plot_embedding(
        Y_new,
        out + "-new-points.png",
        labels=t_new,
        label_name=along,
        title="Held-out points placed by transform",
    )
    # The colour (position along the roll) must vary smoothly along the embedding's first axis.
    corr = abs(np.corrcoef(Y_new[:, 0], t_new)[0, 1])
    print(f"|corr(first coordinate, position along the roll)| for new points: {corr:.3f}")
    print(f"wrote {out}.zarr, {out}-embedding.png, {out}-new-points.png")


if __name__ == "__main__":
    main()
