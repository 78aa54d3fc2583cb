"""``dasklle view``: the page's content, its output checks, and the page in a headless Chromium."""

import base64
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from dasklle.cli import main
from dasklle.view import write_html

from .conftest import quick_argv

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium (the README's test command installs it)"
)


def page_parts(path):
    """The page's metadata and its base64 arrays, decoded."""
    text = path.read_text()
    meta = json.loads(
        re.search(r'<script type="application/json" id="meta">(.*?)</script>', text).group(1)
    )
    arrays = {
        name: base64.b64decode(data)
        for name, data in re.findall(r'id="data-([a-z_]+)">([^<]*)</script>', text)
    }
    return meta, arrays


def test_the_page_holds_points_categories_and_images(tmp_path):
    rng = np.random.default_rng(0)
    embedding = rng.standard_normal((300, 3))
    labels = np.repeat(np.arange(3), 100)
    images = rng.integers(0, 17, (50, 64))
    rows = np.arange(0, 300, 6)
    write_html(
        embedding,
        tmp_path / "p.html",
        labels=labels,
        images=images,
        image_rows=rows,
        image_shape=(8, 8),
    )
    meta, arrays = page_parts(tmp_path / "p.html")
    points = np.frombuffer(arrays["points"], dtype=np.float32).reshape(-1, 2)
    np.testing.assert_allclose(points, embedding[:, :2], rtol=1e-6)
    assert meta["labels"] == {"kind": "categories", "names": ["0", "1", "2"]}
    assert len(meta["palette"]) == 3
    np.testing.assert_array_equal(np.frombuffer(arrays["labels"], np.uint8), labels)
    pixels = np.frombuffer(arrays["images"], np.uint8).reshape(50, 64)
    assert pixels.max() == 255 and pixels.min() == 0
    np.testing.assert_array_equal(np.frombuffer(arrays["image_rows"], np.int32), rows)
    assert meta["images"] == {"height": 8, "width": 8, "count": 50}


def test_continuous_labels_get_a_colour_scale(tmp_path):
    values = np.linspace(-1, 2, 40)
    write_html(np.c_[values, values], tmp_path / "p.html", labels=values)
    meta, _ = page_parts(tmp_path / "p.html")
    assert meta["labels"] == {"kind": "values", "min": -1.0, "max": 2.0}
    assert len(meta["palette"]) == 64


def test_the_page_refuses_what_it_cannot_draw(tmp_path):
    with pytest.raises(ValueError, match="non-finite"):
        write_html(np.array([[0.0, np.nan]]), tmp_path / "p.html")
    with pytest.raises(ValueError, match="image-shape"):
        write_html(
            np.zeros((2, 2)), tmp_path / "p.html", images=np.zeros((2, 10)), image_shape=(3, 3)
        )
    with pytest.raises(ValueError, match="labels have shape"):
        write_html(np.zeros((2, 2)), tmp_path / "p.html", labels=np.zeros(3))


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """A store of 300 8x8 'images' (x.npy) embedded from the command line."""
    tmp_path = tmp_path_factory.mktemp("view")
    rng = np.random.default_rng(1)
    np.save(tmp_path / "x.npy", rng.integers(0, 17, (300, 64)).astype(np.float32))
    np.save(tmp_path / "labels.npy", rng.integers(0, 10, 300))
    out = tmp_path / "s.zarr"
    assert main(quick_argv("embed", tmp_path, out)) == 0
    return tmp_path, out


def test_view_reads_the_images_from_the_stores_input(small_store, capsys):
    tmp_path, store = small_store
    argv = [
        "view",
        str(store),
        "--labels",
        str(tmp_path / "labels.npy"),
        "--image-shape",
        "8x8",
        "--max-images",
        "100",
    ]
    assert main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    meta, arrays = page_parts(tmp_path / "s.html")
    assert meta["images"]["count"] == 100
    rows = np.frombuffer(arrays["image_rows"], np.int32)
    X = np.load(tmp_path / "x.npy")
    pixels = np.frombuffer(arrays["images"], np.uint8).reshape(100, 64)
    np.testing.assert_array_equal(pixels, np.round(255 * X[rows] / X.max()).astype(np.uint8))
    assert main(argv) == 0  # its own page is replaced


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--image-shape", "8by8"], "--image-shape must be HEIGHTxWIDTH"),
        (["--image-shape", "9x9"], "does not match 64 values"),
        (["--labels", "{tmp}/missing.npy"], "--labels"),
        (["--out", "{tmp}/x.npy"], "is not a page dasklle view wrote"),
        (["--out", "{tmp}/nowhere/p.html"], "does not exist"),
    ],
)
def test_view_mistakes_are_one_line_and_exit_2(small_store, extra, words, capsys):
    tmp_path, store = small_store
    before = (tmp_path / "x.npy").read_bytes()
    argv = ["view", str(store), *(e.format(tmp=tmp_path) for e in extra)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err
    assert (tmp_path / "x.npy").read_bytes() == before


def chromium(page, *flags):
    """Run headless Chromium on ``page#selftest``; its stdout and stderr."""
    run = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--enable-unsafe-swiftshader",
            "--use-angle=swiftshader",
            "--window-size=1000,700",
            "--virtual-time-budget=20000",
            "--enable-logging=stderr",
            "--v=0",
            *flags,
            f"file://{page}#selftest",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    return run.stdout, run.stderr


@needs_browser
def test_a_million_points_load_draw_and_hover_in_chromium(tmp_path):
    rng = np.random.default_rng(2)
    n = 1_000_000
    labels = rng.integers(0, 12, n)
    embedding = np.c_[labels + rng.standard_normal(n), np.sin(labels) + rng.standard_normal(n)]
    write_html(embedding, tmp_path / "p.html", labels=labels)
    dom, log = chromium(tmp_path / "p.html", "--dump-dom")
    title = re.search(r"<title>(.*?)</title>", dom).group(1)
    assert title.startswith("selftest ok"), title
    assert "Uncaught" not in log and "error:" not in title
    assert "1,000,000 points" in dom  # the status line after the first draw


@needs_browser
def test_the_screenshot_shows_the_points_and_the_hovered_image(small_store, tmp_path):
    from matplotlib.image import imread

    store_folder, store = small_store
    assert (
        main(["view", str(store), "--image-shape", "8x8", "--out", str(tmp_path / "p.html")]) == 0
    )
    dom, _ = chromium(tmp_path / "p.html", "--dump-dom")
    title = re.search(r"<title>(.*?)</title>", dom).group(1)
    assert title.startswith("selftest ok"), title
    assert "<canvas" in dom.split('id="tooltip"')[1]  # the hovered point's image
    chromium(tmp_path / "p.html", f"--screenshot={tmp_path / 'shot.png'}")
    shot = imread(tmp_path / "shot.png")[60:-40, :, :3]  # the plot, without title and help lines
    coloured = (shot.max(axis=2) - shot.min(axis=2)) > 0.2
    assert coloured.sum() > 500  # blue points on white


def test_plot_draws_the_weight_views_from_the_recorded_input_or_says_why_not(tmp_path, capsys):
    rng = np.random.default_rng(3)
    np.save(tmp_path / "x.npy", rng.standard_normal((200, 3)).astype(np.float32))
    store = tmp_path / "s.zarr"
    assert main(quick_argv("embed", tmp_path, store)) == 0
    assert main(["plot", str(store)]) == 0
    assert (tmp_path / "s-reconstruction.png").exists() and (
        tmp_path / "s-preservation.png"
    ).exists()
    (tmp_path / "x.npy").rename(tmp_path / "moved.npy")
    capsys.readouterr()
    assert main(["plot", str(store), "--out-prefix", str(tmp_path / "again")]) == 0
    assert "no reconstruction views" in capsys.readouterr().out
    assert (tmp_path / "again-embedding.png").exists()
    assert not (tmp_path / "again-reconstruction.png").exists()
    np.save(tmp_path / "short.npy", np.zeros((10, 3), np.float32))
    assert main(["plot", str(store), "--data", str(tmp_path / "short.npy")]) == 2
    assert "--data" in capsys.readouterr().err
    argv = ["plot", str(store), "--data", str(tmp_path / "moved.npy"), "--image-shape", "2x2"]
    assert main(argv) == 2
    assert "does not match the data's 3 features" in capsys.readouterr().err
