import numpy as np
import pytest

from dasklle.cli import main
from dasklle.store import read_embedding


def test_demo_writes_store_and_plot(tmp_path, capsys):
    out = tmp_path / "demo.zarr"
    code = main(["demo", "--n-samples", "1500", "--out", str(out), "--scheduler", "synchronous"])
    assert code == 0
    embedding, attributes = read_embedding(out)
    assert embedding.shape == (1500, 2) and attributes["complete"]
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert "embedded 1,500 points" in capsys.readouterr().out


def test_embed_npy_and_zarr_then_info(tmp_path, capsys):
    from dasklle import datasets

    X, labels = datasets.s_curve(1200, random_state=0)
    np.save(tmp_path / "x.npy", X.compute())
    datasets.write_zarr(tmp_path / "x.zarr", X, labels, chunk_rows=500)
    for source in ("x.npy", "x.zarr"):
        out = tmp_path / f"{source}.out.zarr"
        code = main(
            [
                "embed",
                str(tmp_path / source),
                "--out",
                str(out),
                "--n-neighbors",
                "8",
                "--scheduler",
                "threads",
                "--chunk-rows",
                "300",
            ]
        )
        assert code == 0
        assert read_embedding(out)[0].shape == (1200, 2)
    assert main(["info", str(tmp_path / "x.npy.out.zarr")]) == 0
    assert '"eigen_solver"' in capsys.readouterr().out


def test_embed_on_local_cluster(tmp_path):
    X = np.random.default_rng(0).random((400, 3))
    np.save(tmp_path / "x.npy", X)
    code = main(
        [
            "embed",
            str(tmp_path / "x.npy"),
            "--out",
            str(tmp_path / "o.zarr"),
            "--n-workers",
            "2",
            "--memory-limit",
            "1GiB",
        ]
    )
    assert code == 0


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["embed", "missing.npy", "--out", "o.zarr"], "does not exist"),
        (["info", "missing.zarr"], "cannot open"),
    ],
)
def test_errors_are_one_line_with_exit_code_2(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_bad_flags_exit_2(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["embed", "x.npy"])  # --out missing
    assert exc.value.code == 2
    np.save(tmp_path / "x.npy", np.ones((10, 3)))
    assert (
        main(
            [
                "embed",
                str(tmp_path / "x.npy"),
                "--out",
                str(tmp_path / "o.zarr"),
                "--n-neighbors",
                "0",
                "--scheduler",
                "synchronous",
            ]
        )
        == 2
    )


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
    lines = (tmp_path / "sweep.csv").read_text().strip().splitlines()
    assert lines[0] == "n_neighbors,n_components,reconstruction_error,eigen_solver,eigen_residual"
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
    from dasklle.store import read_attributes

    assert "quality" in read_attributes(store)
    assert len(read_attributes(store)["sweep"]) == 6  # kept by embed
    assert main(["plot", str(store), "--labels", str(tmp_path / "labels.npy")]) == 0
    for suffix in ("embedding", "spectrum", "matrix", "sweep"):
        assert (tmp_path / f"sweep-{suffix}.png").stat().st_size > 5_000
    capsys.readouterr()
    assert main(["info", str(store)]) == 0
    out = capsys.readouterr().out
    assert "embedding: 800 x 2" in out and "trustworthiness" in out and "sweep: 6" in out


@pytest.mark.parametrize("command", ["demo", "embed", "sweep", "plot", "info"])
def test_help_names_every_flag_with_its_default(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: dasklle " + command in out
    if command in ("demo", "embed", "sweep"):
        assert "--scheduler-address" in out and "(default: 1)" in out  # --threads-per-worker
        assert "--n-neighbors" in out and "(default:" in out


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
