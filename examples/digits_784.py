"""digits-784 with labels: embed deformed 28x28 digits and measure how well classes separate.

    python examples/digits_784.py [--n-samples 10000] [--out-dir example-output]

Writes digits_784.zarr and digits_784-embedding.png (coloured by digit), and prints the 10-NN
label accuracy in the embedding, trustworthiness and continuity.
"""

import argparse
import os

import numpy as np
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from dasklle import LocallyLinearEmbedding, datasets
from dasklle.metrics import neighborhood_quality
from dasklle.plotting import plot_embedding, plot_spectrum


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--n-components", type=int, default=2)
    parser.add_argument("--out-dir", default="example-output")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, "digits_784")

    X, labels = datasets.digits_784(args.n_samples, random_state=0)
    labels = labels.compute()
    lle = LocallyLinearEmbedding(
        n_neighbors=10,
        n_components=args.n_components,
        n_eigenvalues=12,
        random_state=0,
        store=out + ".zarr",
        verbose=True,
    )
    Y = lle.fit_transform(X)
    accuracy = cross_val_score(KNeighborsClassifier(10), Y, labels, cv=5).mean()
    quality = neighborhood_quality(X, Y, neighbor_indices=lle.neighbor_indices_)
    print(f"10-NN label accuracy in the embedding: {accuracy:.3f} (chance: 0.1)")
    print("quality: " + ", ".join(f"{k} {v:.3g}" for k, v in quality.items()))
    print("stage seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in lle.timings_.items()))
    plot_embedding(
        Y,
        out + "-embedding.png",
        labels=labels,
        label_name="digit",
        title="digits-784: LLE embedding",
    )
    plot_spectrum(lle.eigenvalues_, args.n_components, out + "-spectrum.png")
    np.save(out + "-labels.npy", labels)
    print(f"wrote {out}.zarr, {out}-embedding.png, {out}-spectrum.png")


if __name__ == "__main__":
    main()
