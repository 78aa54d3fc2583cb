"""Checkpoints and resume: nothing is lost, nothing partial is ever marked complete."""

import numpy as np
import pytest

from dasklle import LocallyLinearEmbedding, eigen, neighbors, weights
from dasklle.store import Checkpoints, read_attributes, read_embedding

from .conftest import manifold


class Spy:
    """Counts calls to a function it wraps (and can make the n-th call fail)."""

    def __init__(self, func, fail_on=None, error=KeyboardInterrupt):
        self.func, self.calls, self.fail_on, self.error = func, 0, fail_on, error

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.fail_on == self.calls:
            raise self.error("interrupted (test)")
        return self.func(*args, **kwargs)


@pytest.fixture
def spies(monkeypatch):
    found = {
        "neighbors": Spy(neighbors.nearest_neighbors),
        "weights": Spy(weights.neighbor_weights),
        "eigen": Spy(eigen.null_space),
    }
    monkeypatch.setattr(neighbors, "nearest_neighbors", found["neighbors"])
    monkeypatch.setattr(weights, "neighbor_weights", found["weights"])
    monkeypatch.setattr(eigen, "null_space", found["eigen"])
    return found


def model(store, **params):
    params = {"n_neighbors": 8, "random_state": 0, **params}
    return LocallyLinearEmbedding(store=str(store), **params)


X = manifold("swiss_roll", 600)


def test_rerun_resumes_every_stage(tmp_path, spies):
    first = model(tmp_path / "s.zarr").fit(X)
    second = model(tmp_path / "s.zarr").fit(X)
    assert {name: spy.calls for name, spy in spies.items()} == dict(neighbors=1, weights=1, eigen=1)
    np.testing.assert_array_equal(first.embedding_, second.embedding_)
    np.testing.assert_array_equal(first.neighbor_indices_, second.neighbor_indices_)
    # A resumed model still maps new points (its neighbor index is rebuilt on demand).
    np.testing.assert_allclose(second.transform(X[:20] + 0.01), first.transform(X[:20] + 0.01))


def test_changed_parameter_recomputes_what_depends_on_it(tmp_path, spies):
    model(tmp_path / "s.zarr").fit(X)
    model(tmp_path / "s.zarr", n_components=3).fit(X)  # only the eigen stage depends on it
    assert (spies["neighbors"].calls, spies["weights"].calls, spies["eigen"].calls) == (1, 1, 2)
    model(tmp_path / "s.zarr", n_components=3, reg=1e-2).fit(X)  # weights and after
    assert (spies["neighbors"].calls, spies["weights"].calls, spies["eigen"].calls) == (1, 2, 3)
    model(tmp_path / "s.zarr", n_neighbors=9).fit(X)  # everything
    assert (spies["neighbors"].calls, spies["weights"].calls, spies["eigen"].calls) == (2, 3, 4)
    # Different data with the same shape: nothing is reused.
    model(tmp_path / "s.zarr", n_neighbors=9).fit(X + 1.0)
    assert spies["neighbors"].calls == 3


def test_interrupted_run_is_not_complete_and_resumes(tmp_path, spies):
    store = tmp_path / "s.zarr"
    reference = model(tmp_path / "other.zarr").fit(X).embedding_
    model(store).fit(X)  # an older complete result in the store
    spies["eigen"].fail_on = spies["eigen"].calls + 1
    with pytest.raises(KeyboardInterrupt):
        model(store, n_components=3).fit(X)
    # The store is no longer marked complete: its embedding is not the one asked for.
    assert read_attributes(store)["complete"] is False
    with pytest.raises(ValueError, match="not a complete dasklle store"):
        read_embedding(store)
    calls = (spies["neighbors"].calls, spies["weights"].calls)
    result = model(store, n_components=3).fit(X)
    assert (spies["neighbors"].calls, spies["weights"].calls) == calls  # resumed
    assert read_attributes(store)["complete"] is True
    np.testing.assert_allclose(np.abs(result.embedding_[:, :2]), np.abs(reference), atol=1e-8)


def test_interrupted_stage_write_is_redone(tmp_path, spies, monkeypatch):
    store = tmp_path / "s.zarr"
    save = Checkpoints.save

    def failing_save(self, stage, *args, **kwargs):
        if stage == "weights":
            # Start the write (stage marked incomplete), then die before it finishes.
            import zarr

            root = zarr.open_group(store=self.path, mode="a")
            group = root.require_group("stages").require_group("weights")
            group.attrs.put({"complete": False, "fingerprint": args[0]})
            raise KeyboardInterrupt("killed mid-write (test)")
        return save(self, stage, *args, **kwargs)

    monkeypatch.setattr(Checkpoints, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        model(store).fit(X)
    monkeypatch.setattr(Checkpoints, "save", save)
    model(store).fit(X)
    assert spies["neighbors"].calls == 1  # the complete stage was kept
    assert spies["weights"].calls == 2  # the half-written one was redone
    assert read_attributes(store)["complete"] is True


def test_resume_false_recomputes(tmp_path, spies):
    model(tmp_path / "s.zarr").fit(X)
    model(tmp_path / "s.zarr", resume=False).fit(X)
    assert spies["neighbors"].calls == spies["weights"].calls == spies["eigen"].calls == 2


@pytest.mark.parametrize("method", ["modified", "ltsa"])
def test_other_methods_checkpoint_m(tmp_path, spies, method):
    first = model(tmp_path / "s.zarr", method=method, n_neighbors=10).fit(X)
    second = model(tmp_path / "s.zarr", method=method, n_neighbors=10).fit(X)
    assert spies["eigen"].calls == 1
    np.testing.assert_array_equal(first.embedding_, second.embedding_)
    assert (first.get_cost_matrix() != second.get_cost_matrix()).nnz == 0
