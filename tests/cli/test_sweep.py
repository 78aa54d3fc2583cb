"""dasklle sweep, then plot and info on the same store."""

import numpy as np

from dasklle.cli import main
from dasklle.io.store import read_embedding

from .conftest import quick_argv


def test_sweep_then_plot_then_info(tmp_path, capsys):
    from dasklle import datasets

    X, labels = datasets.digits_784(800, random_state=0)
    datasets.write_zarr(tmp_path / "digits.zarr", X, labels, chunk_rows=400)
    store = tmp_path / "sweep.zarr"
    argv = [
        "sweep",
        str(tmp_path / "digits.zarr"),
        "--n-neighbors",
        "5,9",
        "--n-components",
        "2,3,5",
        "--out",
        str(store),
        "--scheduler",
        "threads",
        "--quiet",
    ]
    assert main(argv) == 0
    assert "suggested: --n-neighbors" in capsys.readouterr().out
    lines = (tmp_path / "sweep.csv").read_text().strip().splitlines()
    assert lines[0] == (
        "n_neighbors,n_components,reconstruction_error,eigen_solver,eigen_residual,"
        "trustworthiness,continuity"
    )
    assert len(lines) == 1 + 2 * 3
    errors = {
        (int(r.split(",")[0]), int(r.split(",")[1])): float(r.split(",")[2]) for r in lines[1:]
    }
    # More components keep more eigenvalues: the error grows with d for each k.
    assert errors[(9, 2)] < errors[(9, 3)] < errors[(9, 5)]
    assert (tmp_path / "sweep.png").stat().st_size > 5_000
    # An embedding in the same store keeps the sweep; plot draws everything there is.
    np.save(tmp_path / "labels.npy", labels.compute())
    assert (
        main(
            [
                "embed",
                str(tmp_path / "digits.zarr"),
                "--out",
                str(store),
                "--scheduler",
                "threads",
                "--quiet",
                "--n-eigenvalues",
                "8",
            ]
        )
        == 0
    )
    from dasklle.io.store import read_attributes

    assert "quality" in read_attributes(store)
    assert len(read_attributes(store)["sweep"]) == 6  # kept by embed
    assert main(["plot", str(store), "--labels", str(tmp_path / "labels.npy")]) == 0
    for suffix in ("embedding", "spectrum", "matrix", "reconstruction", "preservation", "sweep"):
        assert (tmp_path / f"sweep-{suffix}.png").stat().st_size > 5_000
    capsys.readouterr()
    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "embedding: 800 x 2" in out and "trustworthiness" in out and "sweep: 6" in out


def test_bad_sweep_grid_is_a_one_line_error(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((50, 3)))
    assert (
        main(
            [
                "sweep",
                str(tmp_path / "x.npy"),
                "--n-neighbors",
                "5,x",
                "--out",
                str(tmp_path / "s.zarr"),
                "--scheduler",
                "synchronous",
            ]
        )
        == 2
    )
    assert "--n-neighbors must be a comma-separated list" in capsys.readouterr().err


def test_sweep_keeps_or_overwrites_an_embedding(tmp_path):
    from dasklle.io.store import read_attributes

    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((60, 3)))
    out = tmp_path / "o.zarr"
    assert main(quick_argv("embed", tmp_path, out)) == 0
    np.save(tmp_path / "x.npy", np.random.default_rng(1).random((60, 3)))  # a subsample, say
    assert main(quick_argv("sweep", tmp_path, out)) == 0
    assert "sweep" in read_attributes(out) and read_embedding(out)[0].shape == (60, 2)
    assert main(quick_argv("sweep", tmp_path, out, "--overwrite")) == 0
    attributes = read_attributes(out)
    assert "sweep" in attributes and not attributes["complete"] and "parameters" not in attributes
