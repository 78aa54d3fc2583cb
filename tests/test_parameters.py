"""Bad input gets a ValueError/TypeError that names the parameter."""

import dask.array as da
import numpy as np
import pytest

from dasklle import LocallyLinearEmbedding

X = np.random.default_rng(0).random((60, 4))

BAD_PARAMETERS = [
    (dict(n_neighbors=0), ValueError, "n_neighbors"),
    (dict(n_neighbors=2.5), TypeError, "n_neighbors"),
    (dict(n_neighbors=True), TypeError, "n_neighbors"),
    (dict(n_neighbors=60), ValueError, "n_neighbors"),
    (dict(n_components=0), ValueError, "n_components"),
    (dict(n_components=5), ValueError, "n_components"),
    (dict(reg=-1.0), ValueError, "reg"),
    (dict(reg="a"), TypeError, "reg"),
    (dict(tol=-1e-6), ValueError, "tol"),
    (dict(max_iter=0), ValueError, "max_iter"),
    (dict(method="spectral"), ValueError, "method"),
    (dict(eigen_solver="magic"), ValueError, "eigen_solver"),
    (dict(neighbors_algorithm="annoy"), ValueError, "neighbors_algorithm"),
    (dict(hessian_tol=-1.0), ValueError, "hessian_tol"),
    (dict(modified_tol=float("nan")), ValueError, "modified_tol"),
    (dict(random_state="seed"), TypeError, "random_state"),
    (dict(n_jobs=1.5), TypeError, "n_jobs"),
    (dict(chunk_rows=0), ValueError, "chunk_rows"),
    (dict(store=3), TypeError, "store"),
    (dict(overwrite="yes"), TypeError, "overwrite"),
]


@pytest.mark.parametrize(("params", "error", "words"), BAD_PARAMETERS)
def test_bad_parameters(params, error, words):
    with pytest.raises(error, match=words):
        LocallyLinearEmbedding(**params).fit(X)


BAD_DATA = [
    (np.array([[1.0, np.nan], [2.0, 3.0], [4.0, 5.0]]), ValueError, "NaN"),
    (da.from_array(np.array([[1.0, np.inf]] * 10)), ValueError, "NaN or infinity"),
    (np.ones(10), ValueError, "2D"),
    (da.ones(10), ValueError, "2-D"),
    (np.ones((1, 3)), ValueError, "sample"),
    (da.ones((0, 3)), ValueError, "empty"),
    (np.ones((10, 2), dtype=complex), ValueError, "[Cc]omplex"),
    (da.ones((10, 2), dtype=complex), ValueError, "complex"),
    (np.array([["a", "b"]] * 10, dtype=object), ValueError, "float"),
    (da.from_array(np.array([["a", "b"]] * 10)), TypeError, "numbers"),
    ("/no/such/store.zarr", ValueError, "does not exist"),
]


@pytest.mark.parametrize(("data", "error", "words"), BAD_DATA)
def test_bad_data(data, error, words):
    with pytest.raises(error, match=words):
        LocallyLinearEmbedding(n_neighbors=2, n_components=1).fit(data)


def test_unknown_chunk_sizes():
    x = da.from_array(X, chunks=(20, -1))
    x = x[x[:, 0] > -1]
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        LocallyLinearEmbedding().fit(x)


def test_transform_before_fit_and_with_wrong_width():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        LocallyLinearEmbedding().transform(X)
    model = LocallyLinearEmbedding(n_neighbors=5).fit(X)
    with pytest.raises(ValueError, match="features"):
        model.transform(np.ones((3, 5)))
    with pytest.raises(ValueError, match="features"):
        model.transform(da.ones((3, 5)))


def test_hessian_with_too_few_neighbors():
    with pytest.raises(ValueError, match="n_neighbors must be greater"):
        LocallyLinearEmbedding(method="hessian", n_neighbors=4).fit(X)


def test_many_identical_rows_stay_finite():
    data = np.vstack([np.zeros((40, 3)), np.random.default_rng(0).random((60, 3))])
    model = LocallyLinearEmbedding(n_neighbors=6, eigen_solver="dense").fit(data)
    assert np.isfinite(model.embedding_).all()
    assert np.isfinite(model.weights_).all()


def test_disconnected_graph_is_detected():
    from dasklle import DisconnectedGraphWarning

    rng = np.random.default_rng(0)
    data = np.vstack([rng.random((80, 3)), rng.random((70, 3)) + 100.0])
    with pytest.warns(DisconnectedGraphWarning, match="2 connected components"):
        model = LocallyLinearEmbedding(n_neighbors=5).fit(data)
    assert model.n_graph_components_ == 2
    assert np.isfinite(model.embedding_).all()


def test_malformed_stores(tmp_path):
    import zarr

    zarr.create_array(store=str(tmp_path / "one_d.zarr"), data=np.ones(10))
    group = zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    group.create_array("a", data=np.ones((5, 2)))
    group.create_array("b", data=np.ones((5, 2)))
    (tmp_path / "not_zarr").mkdir()
    (tmp_path / "file.txt").write_text("hello")
    for path, words in [
        ("one_d.zarr", "2-D"),
        ("group.zarr", "does not hold an array called 'X'"),
        ("not_zarr", "is not an input dasklle reads"),
        ("file.txt", "is not an input dasklle reads"),
    ]:
        with pytest.raises(ValueError, match=words):
            LocallyLinearEmbedding().fit(str(tmp_path / path))


def test_settings_first_used_inside_a_config_block_outlive_it():
    import subprocess
    import sys

    # dasklle's defaults must not be loaded into (and leave with) a user's dask.config.set block
    code = (
        "import dask, dasklle\n"
        "with dask.config.set({'dasklle.eigen.placement': 'client'}):\n"
        "    dasklle.LocallyLinearEmbedding\n"
        "from dasklle import config\n"
        "print(config.get('tasks.block-bytes'))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
