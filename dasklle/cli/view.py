"""``dasklle view``: one HTML file with an interactive WebGL scatter of a store's embedding."""

from __future__ import annotations

import argparse
import os

from . import common

HELP = "an HTML page of a store's embedding: zoom, pan, colour by label, hover (no server needed)."
# An existing file at --out is replaced only when it carries this mark (a page this command wrote).
GENERATOR_MARK = b'<meta name="generator" content="dasklle view">'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_picture_flags(parser, images="hover shows the image", data="the images")
    parser.add_argument(
        "--max-images",
        type=int,
        default=20_000,
        help="images the page holds at most (a random sample beyond; each is read from the input).",
    )
    parser.add_argument("--out", help="the HTML file (default: the store's path with .html).")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..io.store import read_embedding
    from ..metrics import sample_rows
    from ..view import write_html
    from .plot import load_labels

    out = args.out or common.prefix(args.store) + ".html"
    _check_out(out)
    shape = common.image_shape(args.image_shape) if args.image_shape else None
    if args.max_images < 0:
        raise ValueError(f"--max-images must be >= 0; got {args.max_images}.")
    embedding, attributes = read_embedding(args.store)
    labels = load_labels(args.labels, len(embedding)) if args.labels else None
    images = rows = None
    if shape is not None:
        X = common.open_data(args.data, attributes, len(embedding))
        rows = sample_rows(len(embedding), args.max_images, random_state=0)
        images = np.asarray(X[rows].compute(scheduler="threads"))
    size = write_html(
        embedding, out, labels=labels, images=images, image_rows=rows, image_shape=shape
    )
    print(f"wrote {out} ({size / 1e6:.1f} MB)")
    return 0


def _check_out(out: str) -> None:
    """Refuse to replace a file this command did not write, or to write into a missing folder."""
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise ValueError(f"--out {out!r}: the folder {folder!r} does not exist.")
    if os.path.isdir(out):
        raise ValueError(f"--out {out!r} is a folder; give an .html file.")
    if os.path.exists(out):
        with open(out, "rb") as f:
            if GENERATOR_MARK not in f.read(4096):
                raise ValueError(f"--out {out!r} exists and is not a page dasklle view wrote.")
