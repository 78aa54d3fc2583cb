import numpy as np
import pytest
import zarr

from dasklle.cli import main
from dasklle.io.store import read_embedding

from .conftest import snapshot


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
    from dasklle.io.store import read_attributes

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


def _argv(command, tmp_path, out, *extra):
    """A quick run of a command writing to out (input x.npy for embed and sweep)."""
    head = {
        "demo": ["demo", "--n-samples", "300"],
        "embed": ["embed", str(tmp_path / "x.npy"), "--quality-sample", "0"],
        "sweep": ["sweep", str(tmp_path / "x.npy"), "--n-neighbors", "5", "--n-components", "2"],
    }[command]
    return [*head, "--out", str(out), "--scheduler", "synchronous", "--quiet", *extra]


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a cluster starts or the pipeline runs."""
    from dasklle import cli, pipeline, sweep

    def refuse(*args, **kwargs):
        raise AssertionError("work started before --out was checked")

    monkeypatch.setattr(cli, "_scheduler", refuse)
    monkeypatch.setattr(pipeline, "fit_lle", refuse)
    monkeypatch.setattr(sweep, "reconstruction_error_grid", refuse)


@pytest.mark.parametrize("command", ["demo", "embed", "sweep"])
@pytest.mark.parametrize(
    ("out", "words"),
    [
        ("taken.txt", "is an existing file, not a zarr store"),
        ("mine", "is a folder not written by dasklle"),
        ("x.zarr", "is a zarr array not written by dasklle"),
        ("taken.txt/o.zarr", "taken.txt' is a file, not a folder"),
    ],
)
@pytest.mark.parametrize("overwrite", [False, True])
def test_bad_out_is_refused_before_any_work(
    command, out, words, overwrite, tmp_path, no_work, capsys
):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((60, 3)))
    zarr.create_array(store=str(tmp_path / "x.zarr"), data=np.ones((60, 3)))
    (tmp_path / "taken.txt").write_text("mine")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    extra = ["--overwrite"] if overwrite else []
    assert main(_argv(command, tmp_path, tmp_path / out, *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dasklle {command}: error: --out ") and words in err
    assert err.count("\n") == 1 and "Traceback" not in err
    if overwrite and "not a folder" not in words:
        assert "even with --overwrite" in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["demo", "embed", "sweep"])
def test_read_only_out_is_refused(command, tmp_path, no_work, capsys, monkeypatch):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((60, 3)))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", refuse)  # as a read-only file system would
    assert main(_argv(command, tmp_path, tmp_path / "new" / "o.zarr")) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is not writable" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_out_of_another_input_needs_overwrite(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((60, 3)))
    out = tmp_path / "o.zarr"
    assert main(_argv("embed", tmp_path, out)) == 0
    assert main(_argv("embed", tmp_path, out)) == 0  # the same input resumes
    np.save(tmp_path / "x.npy", rng.random((80, 3)))
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert main(_argv("embed", tmp_path, out)) == 2
    err = capsys.readouterr().err
    assert "holds results of a different input; pass --overwrite" in err
    assert err.count("\n") == 1 and snapshot(tmp_path) == before
    assert main(_argv("embed", tmp_path, out, "--overwrite")) == 0
    assert read_embedding(out)[0].shape == (80, 2)
    # demo's swiss roll is another input too.
    assert main(_argv("demo", tmp_path, out)) == 2
    assert "different input" in capsys.readouterr().err


def test_sweep_keeps_or_overwrites_an_embedding(tmp_path):
    from dasklle.io.store import read_attributes

    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((60, 3)))
    out = tmp_path / "o.zarr"
    assert main(_argv("embed", tmp_path, out)) == 0
    np.save(tmp_path / "x.npy", np.random.default_rng(1).random((60, 3)))  # a subsample, say
    assert main(_argv("sweep", tmp_path, out)) == 0
    assert "sweep" in read_attributes(out) and read_embedding(out)[0].shape == (60, 2)
    assert main(_argv("sweep", tmp_path, out, "--overwrite")) == 0
    attributes = read_attributes(out)
    assert "sweep" in attributes and not attributes["complete"] and "parameters" not in attributes


def test_embed_within_small_workers_memory(tmp_path):
    """20,000 x 50 from a .npy on 2 workers of 1 GiB: exact search, weights and the quality scan
    run in tasks sized from the memory limit (one block of the input would need 3.2 GB of
    distances), and no worker is restarted."""
    rng = np.random.default_rng(0)
    latent = rng.random((20_000, 3))
    X = np.tanh(latent @ rng.standard_normal((3, 50))).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    argv = ["embed", str(tmp_path / "x.npy"), "--out", str(tmp_path / "o.zarr")]
    code = main([*argv, "--n-workers", "2", "--memory-limit", "1GiB", "--quiet"])
    assert code == 0
    attributes = read_embedding(tmp_path / "o.zarr")[1]
    assert attributes["neighbors_algorithm"] == "brute"
    assert attributes["quality"]["knn_recall"] == 1.0
