import numpy as np
import pytest
import zarr

from dasklle import datasets


@pytest.mark.parametrize("name", sorted(datasets.GENERATORS))
def test_generators_are_deterministic_and_chunking_free(name):
    X1, y1 = datasets.make(name, 20_000, random_state=3)
    X2, y2 = datasets.make(name, 20_000, random_state=3, chunks=7_001)
    np.testing.assert_array_equal(X1.compute(), X2.compute())
    np.testing.assert_array_equal(y1.compute(), y2.compute())
    X3, _ = datasets.make(name, 20_000, random_state=4)
    assert not np.array_equal(X1[:100].compute(), X3[:100].compute())


def test_digits_784_looks_like_mnist():
    X, labels = datasets.digits_784(500, random_state=0)
    X, labels = X.compute(), labels.compute()
    assert X.shape == (500, 784) and X.dtype == np.float32
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert set(np.unique(labels)) == set(range(10))
    # Border pixels stay mostly empty, as in MNIST.
    images = X.reshape(-1, 28, 28)
    assert images[:, 0, :].mean() < 0.01 < images[:, 10:18, 10:18].mean()


def test_write_zarr_streams_to_a_group(tmp_path):
    X, labels = datasets.swiss_roll(5000, random_state=1)
    datasets.write_zarr(tmp_path / "roll.zarr", X, labels, chunk_rows=1000)
    group = zarr.open_group(str(tmp_path / "roll.zarr"), mode="r")
    np.testing.assert_array_equal(group["X"][...], X.compute())
    np.testing.assert_array_equal(group["labels"][...], labels.compute())
