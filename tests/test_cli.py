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
