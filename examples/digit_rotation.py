"""The rotation trajectory of one digit through a fitted embedding.

    python examples/digit_rotation.py [--n-samples 10000] [--out-dir example-output]

Fits LLE on digits-784, rotates one held-out digit through 360 degrees in 1-degree steps, maps
each rotated image with ``transform`` and draws the path over the embedding of the others
(digit_rotation.png), with a strip of the rotated images (digit_rotation-images.png).
"""

import argparse
import os

import numpy as np

from dasklle import LocallyLinearEmbedding, datasets
from dasklle.datasets import deform_digits
from dasklle.plotting import draw_embedding


def rotations(image: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """The image rotated about its centre by each angle (no scaling, shear or shift)."""
    m = len(degrees)
    templates = np.repeat(image.reshape(1, 28, 28), m, axis=0).astype(np.float64)
    return deform_digits(templates, np.deg2rad(degrees), np.ones(m), np.zeros(m), np.zeros((m, 2)))


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=10_000)
    parser.add_argument("--out-dir", default="example-output")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    out = os.path.join(args.out_dir, "digit_rotation")

    X, labels = datasets.digits_784(args.n_samples, random_state=0)
    X, labels = X.compute(), labels.compute()
    lle = LocallyLinearEmbedding(n_neighbors=10, random_state=0).fit(X)

    held_out, _ = datasets.digits_784(1, random_state=99)
    degrees = np.arange(360)
    images = rotations(held_out.compute()[0], degrees).astype(np.float32)
    path = lle.transform(images)

    fig, ax = plt.subplots(figsize=(8, 6), dpi=120)
    draw_embedding(ax, lle.embedding_, labels=labels, label_name="digit")  # the others
    for artist in ax.collections:
        artist.set_alpha(0.25)
    ax.plot(*path.T, "-", color="k", lw=0.8)
    # a cyclic map with no pale end: 0 and 359 degrees both read on the light background
    trail = ax.scatter(*path.T, c=degrees, cmap="hsv", vmin=0, vmax=360, s=10, zorder=3)
    ax.scatter(*path[0], s=120, facecolor="none", edgecolor="k", lw=1.5, zorder=4)
    ax.annotate("0° (and 360°)", path[0], xytext=(-20, -40), textcoords="offset points",
                fontsize=9, weight="bold", bbox=dict(fc="white", ec="k", lw=0.5),
                arrowprops=dict(arrowstyle="-", color="k"), zorder=5)  # fmt: skip
    fig.colorbar(trail, ax=ax, label="rotation (degrees)", ticks=range(0, 361, 60), pad=0.2)
    ax.set_title("A digit rotated through 360°, mapped with transform")
    fig.tight_layout()
    fig.savefig(out + ".png")
    plt.close(fig)

    shown = range(0, 361, 30)  # both ends: 360 degrees is the starting image again
    fig, axes = plt.subplots(1, len(shown), figsize=(13, 1.5), dpi=100)
    for ax, d in zip(axes, shown, strict=True):
        ax.imshow(images[d % 360].reshape(28, 28), cmap="gray_r")
        ax.set_title(f"{d}°", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out + "-images.png")
    plt.close(fig)
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    print(f"path length {steps.sum():.3g}; largest 1-degree jump {steps.max():.3g}")
    print(f"wrote {out}.png, {out}-images.png")


if __name__ == "__main__":
    main()
