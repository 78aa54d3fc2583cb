"""Task graphs: the suite's guards against bad graphs fire, and dasklle's graphs pass them."""

import logging

import dask
import numpy as np
import pytest
from dask.utils import ensure_dict

from dasklle import LocallyLinearEmbedding, datasets
from dasklle.metrics import neighborhood_quality
from dasklle.tasks import progress
from dasklle.tasks.blocks import private_block


def _identity(x):
    return x


def _one():
    return 1


def _two():
    return 2


def _probe(dependency):
    """A task under one fixed key, depending on ``dependency``."""
    return dask.delayed(_identity)(dependency, dask_key_name="guard-probe")


def _provoke_conflict(client):
    """The key "guard-probe" submitted twice with different dependencies, the first still held."""
    first = client.compute(_probe(dask.delayed(_one)(dask_key_name="guard-one")))
    assert first.result() == 1
    # a new key on top: its result comes back only after the scheduler handled this graph
    second = dask.delayed(_identity)(
        _probe(dask.delayed(_two)(dask_key_name="guard-two")), dask_key_name="guard-after"
    )
    client.compute(second).result()
    del first


@pytest.mark.parametrize("with_caplog", [False, True])
def test_run_spec_guard_fails_a_test_with_one_key_for_two_tasks(
    client, run_spec_guard, with_caplog, request
):
    if with_caplog:
        caplog = request.getfixturevalue("caplog")
        caplog.set_level(logging.ERROR, logger="distributed")
    _provoke_conflict(client)
    assert run_spec_guard.conflicts and "guard-probe" in run_spec_guard.conflicts[0]
    with pytest.raises(pytest.fail.Exception, match="run_spec conflict"):
        run_spec_guard.check()
    run_spec_guard.conflicts.clear()  # provoked on purpose


def test_large_graph_warning_is_an_error(client):
    data = np.ones(20_000)  # 160 kB, embedded in the graph
    with dask.config.set({"distributed.admin.large-graph-warning-threshold": "100kB"}):
        with pytest.raises(UserWarning, match="Sending large graph"):
            client.compute(dask.delayed(np.sum)(data))


def _scheduler_keys(dask_scheduler=None) -> set:
    return set(dask_scheduler.tasks)


def test_compute_returns_once_the_scheduler_forgot_its_tasks(client):
    X = datasets.swiss_roll(3000, chunks=1000)[0]
    before = client.run_on_scheduler(_scheduler_keys)
    progress.compute(X.sum(), X[::7])
    assert client.run_on_scheduler(_scheduler_keys) == before


def test_private_block_shares_no_key_with_its_array():
    X = datasets.swiss_roll(3000, chunks=1000)[0]
    points = private_block(X, seed="test")
    assert not set(ensure_dict(points.dask)) & set(ensure_dict(X.dask))
    np.testing.assert_array_equal(points.compute(), X.compute())


def test_fit_then_quality_and_transform_keep_one_task_per_key(client):
    # a persisted tree index, then graphs over the same generated input: each key one task
    X = datasets.swiss_roll(3000, chunks=1000)[0]
    lle = LocallyLinearEmbedding(n_neighbors=10, neighbors_algorithm="kd_tree", random_state=0)
    Y = lle.fit_transform(X)
    neighborhood_quality(X, Y, neighbor_indices=lle.neighbor_indices_)
    lle.transform(datasets.swiss_roll(500, random_state=1, chunks=200)[0]).compute()
