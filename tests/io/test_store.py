"""Checkpoints and resume: nothing is lost, nothing partial is ever marked complete."""

import os

import dask
import dask.array as da
import numpy as np
import pytest
import zarr

from dasklle import LocallyLinearEmbedding, eigen, neighbors, pipeline
from dasklle.io.store import Checkpoints, check_output_store, read_attributes, read_embedding
from dasklle.local import weights

from ..conftest import manifold, max_sine, snapshot


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
    # Different data with the same shape: refused, then replaced on purpose (nothing reused).
    with pytest.raises(ValueError, match="different input"):
        model(tmp_path / "s.zarr", n_neighbors=9).fit(X + 1.0)
    model(tmp_path / "s.zarr", n_neighbors=9, overwrite=True).fit(X + 1.0)
    assert spies["neighbors"].calls == 3


def test_changed_setting_recomputes_the_stage_it_steers(tmp_path, spies):
    model(tmp_path / "s.zarr").fit(X)
    with dask.config.set({"dasklle.eigen.lobpcg-extra-vectors": 6}):
        model(tmp_path / "s.zarr").fit(X)  # the eigen stage's settings changed
    assert (spies["neighbors"].calls, spies["weights"].calls, spies["eigen"].calls) == (1, 1, 2)
    with dask.config.set({"dasklle.eigen.lobpcg-extra-vectors": 6}):
        model(tmp_path / "s.zarr").fit(X)  # the same settings again: resumed
    assert spies["eigen"].calls == 2


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


@pytest.fixture
def no_fit(monkeypatch):
    """Fail the test if the pipeline starts."""

    def refuse(*args, **kwargs):
        raise AssertionError("the pipeline ran before the store was checked")

    monkeypatch.setattr(pipeline, "fit_lle", refuse)


def read_only(monkeypatch):
    """Make every folder refuse new files, as a read-only file system would."""

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", refuse)


def mistakes(tmp_path):
    """Output paths fit must refuse, each with the words its message holds."""
    (tmp_path / "file.txt").write_text("mine")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    zarr.create_array(store=str(tmp_path / "data.zarr"), data=np.ones((4, 2)))
    zarr.open_group(store=str(tmp_path / "group.zarr"), mode="w").attrs["owner"] = "someone"
    return [
        (tmp_path / "file.txt", "is an existing file"),
        (tmp_path / "mine", "is a folder not written by dasklle"),
        (tmp_path / "data.zarr", "is a zarr array not written by dasklle"),
        (tmp_path / "group.zarr", "is a zarr group not written by dasklle"),
        (tmp_path / "file.txt" / "s.zarr", "file.txt' is a file, not a folder"),
    ]


@pytest.mark.parametrize("case", range(5))
@pytest.mark.parametrize("overwrite", [False, True])
def test_bad_store_refused_before_computing(tmp_path, no_fit, case, overwrite):
    path, words = mistakes(tmp_path)[case]
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match=words) as error:
        model(path, overwrite=overwrite).fit(X)
    message = str(error.value)
    assert message.startswith(f"store {str(path)!r}") and "\n" not in message
    if overwrite and case < 4:
        assert "even with overwrite=True" in message  # never deleted, said so
    assert snapshot(tmp_path) == before


def test_read_only_location_refused(tmp_path, no_fit, monkeypatch):
    read_only(monkeypatch)
    with pytest.raises(ValueError, match="is not writable: .*Permission denied"):
        model(tmp_path / "new" / "s.zarr").fit(X)
    assert os.listdir(tmp_path) == []


def test_empty_folder_and_missing_parents_are_fine(tmp_path):
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "empty", tmp_path / "a" / "b" / "s.zarr"):
        check_output_store(path, pipeline.input_fingerprint(da.from_array(X)))
    assert os.listdir(tmp_path / "empty") == []  # the probe file is gone


def test_other_input_refused_then_overwritten(tmp_path, spies):
    path = tmp_path / "s.zarr"
    model(path).fit(X)
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match="holds results of a different input; pass overwrite"):
        model(path).fit(X[::-1])
    assert snapshot(tmp_path) == before and spies["neighbors"].calls == 1
    replaced = model(path, overwrite=True).fit(X[::-1])
    np.testing.assert_array_equal(read_embedding(path)[0], replaced.embedding_)
    assert spies["neighbors"].calls == 2
    # Overwrite never resumes, even from the same input.
    model(path, overwrite=True).fit(X[::-1])
    assert spies["neighbors"].calls == 3


def test_interrupted_run_records_its_input(tmp_path, spies):
    spies["weights"].fail_on = 1
    with pytest.raises(KeyboardInterrupt):
        model(tmp_path / "s.zarr").fit(X)
    attributes = read_attributes(tmp_path / "s.zarr")
    assert attributes["input_fingerprint"] and attributes["complete"] is False
    with pytest.raises(ValueError, match="different input"):
        model(tmp_path / "s.zarr").fit(X + 1.0)


def test_solve_killed_midway_resumes_at_its_last_saved_iteration(tmp_path, monkeypatch):
    from dasklle.eigen import solve

    data = manifold("swiss_roll", 2000)
    params = dict(n_neighbors=10, eigen_solver="amg", tol=1e-6)
    reference = model(tmp_path / "whole.zarr", **params).fit(data)
    saved_at = []
    call = solve._Checkpointer.__call__

    def killed_after_second_save(self, n_iter, vectors):
        call(self, n_iter, vectors)
        saved_at.append(n_iter)
        if len(saved_at) == 2:
            raise KeyboardInterrupt("killed mid-solve (test)")

    store = tmp_path / "s.zarr"
    with dask.config.set({"dasklle.eigen.checkpoint-interval": 0}):
        monkeypatch.setattr(solve._Checkpointer, "__call__", killed_after_second_save)
        with pytest.raises(KeyboardInterrupt):
            model(store, **params).fit(data)
        monkeypatch.setattr(solve._Checkpointer, "__call__", call)
        starts = []
        monkeypatch.setattr(
            solve.amg, "bottom_eigenvectors", _recording(solve.amg.bottom_eigenvectors, starts)
        )
        resumed = model(store, **params).fit(data)
    assert starts == [saved_at[-1]]  # the solve went on from the last save, not from 0
    assert resumed.n_iter_ > saved_at[-1]
    assert resumed.eigen_error_bound_ <= 1e-6
    assert max_sine(resumed.embedding_, reference.embedding_) <= 1e-5
    stages = zarr.open_group(str(store), mode="r")["stages"]
    assert not [name for name in stages.group_keys() if "partial" in name]  # cleared once done


def _recording(function, starts):
    def recorded(*args, **kwargs):
        starts.append(kwargs.get("first_iteration", 0))
        return function(*args, **kwargs)

    return recorded
