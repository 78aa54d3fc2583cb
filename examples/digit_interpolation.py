"""Interpolating between two digits: straight in input space vs through the embedding.

    python examples/digit_interpolation.py [--n-samples 10000] [--out-dir example-output]

A straight line between two images cross-fades them (ghostly double images). The same line
drawn between their *embedding* coordinates and mapped back with ``inverse_transform`` passes
through images the data actually contains. Writes digit_interpolation.png (two rows of images).
"""

import argparse
import os

import numpy as np

from dasklle import LocallyLinearEmbedding, datasets


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out-dir", default="example-output")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, "digit_interpolation")

    X, labels = datasets.digits_784(args.n_samples, random_state=0)
    X, labels = X.compute(), labels.compute()
    lle = LocallyLinearEmbedding(n_neighbors=10, n_components=4, random_state=0).fit(X)

    a = int(np.flatnonzero(labels == 1)[0])
    b = int(np.flatnonzero(labels == 7)[0])
    s = np.linspace(0, 1, args.steps)[:, None]
    straight = (1 - s) * X[a] + s * X[b]
    Y_line = (1 - s) * lle.embedding_[a] + s * lle.embedding_[b]
    through = lle.inverse_transform(Y_line)

    fig, axes = plt.subplots(2, args.steps, figsize=(1.2 * args.steps, 3), dpi=100)
    for row, images, name in ((0, straight, "input space"), (1, through, "via embedding")):
        for j in range(args.steps):
            axes[row, j].imshow(images[j].reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            axes[row, j].axis("off")
        axes[row, 0].set_title(name, fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(out + ".png")
    plt.close(fig)
    print(f"wrote {out}.png")


if __name__ == "__main__":
    main()
