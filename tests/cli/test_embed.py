"""dasklle embed: .npy and zarr inputs, the local cluster, small workers' memory."""

import numpy as np

from dasklle.cli import main
from dasklle.io.store import read_embedding

from ..conftest import max_sine


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
    """The default placement, and --eigen-placement workers, which keeps the amg solve (and so
    every n-row array) off this process; both give the same embedding."""
    X = np.random.default_rng(0).random((400, 3))
    np.save(tmp_path / "x.npy", X)
    argv = ["embed", str(tmp_path / "x.npy"), "--eigen-solver", "amg", "--n-workers", "2"]
    embeddings, bounds = [], []
    for placement in ("auto", "workers"):
        out = tmp_path / f"{placement}.zarr"
        argv_out = [*argv, "--out", str(out), "--memory-limit", "1GiB", "--quiet"]
        assert main([*argv_out, "--eigen-placement", placement]) == 0
        Y, attributes = read_embedding(out)
        assert attributes["eigen_placement"] == ("client" if placement == "auto" else "workers")
        embeddings.append(np.asarray(Y))
        bounds.append(attributes["eigen_error_bound"])
    assert max_sine(*embeddings) <= sum(bounds) <= 2e-3  # each within its bound of the exact one


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
