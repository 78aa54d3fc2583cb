"""Every input format opens lazily, reads the same numbers, and embeds the same way."""

import pickle

import anndata
import dask
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import zarr

from dasklle import LocallyLinearEmbedding
from dasklle.cli import main
from dasklle.io.arrays import as_dask_input
from tests.conftest import manifold, max_sine

# The same float32 numbers read from every format give the same embedding up to round-off in
# the eigen solver (dense LAPACK on identical M: identical to the last bit in practice).
SAME_EMBEDDING_SINE = 1e-8
N_ROWS, N_FEATURES = 600, 6


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    X = manifold("s_curve", N_ROWS)
    lifted = X @ np.random.default_rng(0).standard_normal((3, N_FEATURES))
    return lifted.astype(np.float32)


@pytest.fixture(scope="module")
def files(data, tmp_path_factory) -> dict[str, str]:
    """The data in every format dasklle reads, by name -> path (with its key where needed)."""
    d = tmp_path_factory.mktemp("inputs")
    columns = [f"pc{i}" for i in range(N_FEATURES)]
    np.save(d / "x.npy", data)
    np.save(d / "fortran.npy", np.asfortranarray(data))
    z = zarr.create_array(d / "x.zarr", shape=data.shape, dtype=data.dtype, chunks=(250, 6))
    z[:] = data
    with h5py.File(d / "x.h5", "w") as f:
        f.create_dataset("group/data", data=data, chunks=(100, N_FEATURES))
        f.create_dataset("labels", data=np.arange(N_ROWS))
        f.create_dataset("umap", data=data[:, :2])
    adata = anndata.AnnData(X=sp.random(N_ROWS, 40, density=0.1, format="csr", random_state=0))
    adata.obsm["X_pca"] = data
    adata.write_h5ad(d / "cells.h5ad")
    anndata.AnnData(X=data).write_h5ad(d / "dense.h5ad")
    frame = pd.DataFrame(data, columns=columns).assign(cell=[f"c{i}" for i in range(N_ROWS)])
    frame.to_parquet(d / "x.parquet")
    # float64 text of the float32 values: reads back to exactly the same numbers
    frame.astype({c: np.float64 for c in columns}).to_csv(d / "x.csv", index=False)
    return {
        "npy": str(d / "x.npy"),
        "npy-fortran": str(d / "fortran.npy"),
        "zarr": str(d / "x.zarr"),
        "hdf5": f"{d / 'x.h5'}:/group/data",
        "h5ad-obsm": f"{d / 'cells.h5ad'}:X_pca",
        "h5ad-X": str(d / "dense.h5ad"),
        "parquet": str(d / "x.parquet"),
        "csv": str(d / "x.csv"),
    }


FORMATS = ("npy", "npy-fortran", "zarr", "hdf5", "h5ad-obsm", "h5ad-X", "parquet", "csv")


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_the_same_rows_in_planned_blocks(fmt, files, data):
    array, source = as_dask_input(files[fmt], chunk_rows=128)
    assert source == files[fmt]
    assert array.chunks[0][:-1] == (128,) * (len(array.chunks[0]) - 1)
    np.testing.assert_array_equal(array.compute(), data)


@pytest.mark.parametrize("fmt", ("npy", "hdf5", "h5ad-obsm"))
def test_file_inputs_carry_paths_not_data_in_the_graph(fmt, files, data):
    array, _ = as_dask_input(files[fmt])
    graph = pickle.dumps(dict(array.__dask_graph__()))
    assert len(graph) < data.nbytes / 10, len(graph)


def test_a_memory_map_is_read_from_its_file(files, data):
    mapped = np.load(files["npy"], mmap_mode="r")
    array, source = as_dask_input(mapped)
    assert "memory map" in source
    assert len(pickle.dumps(dict(array.__dask_graph__()))) < data.nbytes / 10
    np.testing.assert_array_equal(array.compute(), data)


def test_every_format_gives_the_same_embedding(files, data, client):
    def embed(source):
        model = LocallyLinearEmbedding(
            n_neighbors=10, eigen_solver="dense", neighbors_algorithm="brute", chunk_rows=150
        )
        return model.fit_transform(source).astype(np.float64)  # float32 angles carry 1e-7 noise

    reference = embed(files["zarr"])
    # CSV text reads as float64, so its result is not rounded to float32 like the others
    reference64 = embed(data.astype(np.float64))
    for fmt in FORMATS:
        expected = reference64 if fmt == "csv" else reference
        assert max_sine(embed(files[fmt]), expected) <= SAME_EMBEDDING_SINE, fmt


def test_numpy_input_on_a_cluster_is_scattered_not_put_in_the_graph(client):
    X = np.random.default_rng(0).random((40_000, 64))  # 20 MB: over dask's large-graph warning
    array, _ = as_dask_input(X, chunk_rows=10_000)
    assert len(pickle.dumps(dict(array.__dask_graph__()))) < 1e6
    np.testing.assert_array_equal(array[::1000].compute(), X[::1000])


def test_parquet_and_csv_columns_are_selected(files, data, capsys, tmp_path):
    picked = ["pc0", "pc2", "pc5"]
    for fmt in ("parquet", "csv"):
        out = tmp_path / f"{fmt}.zarr"
        argv = ["embed", files[fmt], "--out", str(out), "--columns", ",".join(picked)]
        assert main([*argv, "--scheduler", "synchronous", "--quality-sample", "0"]) == 0
        stored = zarr.open_group(str(out), mode="r")
        assert stored["embedding"].shape == (N_ROWS, 2)


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("missing.npy", "does not exist"),
        ("notes.txt", "is not an input dasklle reads; it reads"),
        ("{d}/x.h5", "name the dataset"),
        ("{d}/x.h5:/nothing", "has no dataset '/nothing'"),
        ("{d}/cells.h5ad", "embed a dense obsm entry instead, e.g."),
        ("{d}/cells.h5ad:X_umap", "has no dense obsm entry 'X_umap'; it has ['X_pca']"),
        ("{d}/scalar.npy", "must hold a 2-D array"),
    ],
)
def test_unreadable_inputs_get_one_line_naming_input(source, words, files, tmp_path, capsys):
    d = files["npy"].rsplit("/", 1)[0]
    np.save(f"{d}/scalar.npy", np.arange(3.0))
    (tmp_path / "notes.txt").write_text("1, 2\n")
    source = source.format(d=d)
    code = main(
        [
            "embed",
            str(tmp_path / source) if "{" not in source and "/" not in source else source,
            "--out",
            str(tmp_path / "o.zarr"),
            "--scheduler",
            "synchronous",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.startswith("dasklle embed: error: INPUT ")
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o.zarr").exists()


def test_non_numeric_column_is_refused(files):
    with pytest.raises(ValueError, match=r"columns \['cell'\] .* are not numeric"):
        as_dask_input(files["parquet"], columns=["pc0", "cell"])


def test_a_dasklle_store_is_not_taken_for_data(files, tmp_path):
    out = str(tmp_path / "result.zarr")
    LocallyLinearEmbedding(n_neighbors=8, store=out).fit(files["npy"])
    for given in (out, f"{out}/embedding", zarr.open_group(out, mode="r")):
        with pytest.raises(ValueError, match=r"is a store written by dasklle .* of .*x\.npy"):
            LocallyLinearEmbedding(n_neighbors=8).fit(given)


def test_transform_reads_paths_too(files, data):
    model = LocallyLinearEmbedding(n_neighbors=10, random_state=0).fit(data)
    np.testing.assert_allclose(
        dask.compute(model.transform(files["npy"]))[0], model.transform(data), atol=1e-6
    )


def test_a_data_group_with_its_own_complete_flag_is_data(data, tmp_path):
    """Other tools mark their groups complete too (dasklle's benchmark data sets do)."""
    group = zarr.open_group(str(tmp_path / "data.zarr"), mode="w")
    group.create_array("X", data=data)
    group.attrs["complete"] = True
    array, _ = as_dask_input(str(tmp_path / "data.zarr"))
    np.testing.assert_array_equal(array.compute(), data)


def test_stored_chunks_too_large_for_the_workers_are_refused_before_work(data, tmp_path):
    """Decoding a zarr chunk holds its compressed and decoded bytes: on 2 GiB workers a 1 GB
    chunk cannot be read, which is said before anything runs."""
    from distributed import Client, LocalCluster

    big = zarr.create_array(
        str(tmp_path / "big.zarr"), shape=(4096, 65536), dtype=np.float32, chunks=(4096, 65536)
    )
    assert big.nbytes == 2**30
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, memory_limit="2GiB", processes=False,
                     dashboard_address=None) as cluster,
        Client(cluster),
        pytest.raises(ValueError, match=r"stored in chunks of 1\.00 GiB; .* Rechunk the store"),
    ):  # fmt: skip
        as_dask_input(str(tmp_path / "big.zarr"))
