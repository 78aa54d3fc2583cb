"""Out of core: an input larger than the workers' combined memory limit.

A swiss roll carried into 20,480 dimensions by a random linear map (16,000 rows, 1.31 GB of
float32 in a zarr store) is embedded on 2 workers limited to 600 MiB each (1.17 GiB together; a
worker's own imports take ~190 MB of that, and dask pauses a worker at 80% of its limit). Every
stage streams chunks: the neighbor search and the weights run inside partitions of at most
48 MB (the largest k-means partition here is ~1.5x that), fed by a shuffle through scratch
files, so nothing in flight lives in worker memory. The test checks that no worker was replaced
(the nanny restarts a worker that passes 95% of its limit), that the embedding is finite and
that it unrolls the roll.

Measured (2026-11-23): ~2 minutes, peak worker RSS ~490 MB (in a partition task). Before the
PCA axes and k-means centres became graph keys, each queued task carried its own 10 MB copy
of the axes; a worker then held ~900 MB of task specs outside dask's accounting, was paused
at 80% and the run stalled.
"""

import dask
import numpy as np
import pytest
import scipy.stats
import zarr

from dasklle import LocallyLinearEmbedding, config, datasets

from .conftest import local_cluster

N_SAMPLES = 16_000
N_FEATURES = 20_480
WORKER_LIMIT = "600MiB"
N_WORKERS = 2


def _lift(block: np.ndarray, R: np.ndarray) -> np.ndarray:
    return (block @ R).astype(np.float32)


@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    """(path of the zarr array, position along the roll); written chunk by chunk."""
    X3, t = datasets.swiss_roll(N_SAMPLES, random_state=0, chunks=256)
    R = np.random.default_rng(0).standard_normal((3, N_FEATURES)) / np.sqrt(N_FEATURES)
    X = X3.map_blocks(_lift, R, dtype=np.float32, chunks=(X3.chunks[0], N_FEATURES))
    path = str(tmp_path_factory.mktemp("ooc") / "X.zarr")
    with dask.config.set(scheduler="threads", num_workers=2):
        X.to_zarr(path)
        t = t.compute()
    return path, t


def test_input_larger_than_workers_memory_completes(big_input):
    from dask.utils import parse_bytes
    from distributed import Client

    path, t = big_input
    stored = zarr.open_array(path, mode="r")
    assert stored.nbytes > N_WORKERS * parse_bytes(WORKER_LIMIT)
    # the partitioned search runs above 50,000 rows; make it run here
    partitioned = {
        "dasklle.neighbors.projected-brute-max-rows": 1000,
        "dasklle.neighbors.partition-bytes": "48 MiB",
    }
    with (
        dask.config.set(partitioned),
        local_cluster(N_WORKERS, WORKER_LIMIT) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(N_WORKERS)
        first = set(client.scheduler_info()["workers"])
        model = LocallyLinearEmbedding(n_neighbors=12, random_state=0)
        Y = model.fit_transform(path)
        assert set(client.scheduler_info()["workers"]) == first, "a worker was replaced"
    assert model.neighbors_algorithm_ == "projected"
    assert Y.shape == (N_SAMPLES, 2) and np.all(np.isfinite(Y))
    # the roll is unrolled: one embedding direction follows the position along it
    rho = max(abs(scipy.stats.spearmanr(Y[:, j], t).statistic) for j in range(2))
    assert rho > 0.9, rho


def test_batches_and_partitions_shrink_with_dimension():
    from dasklle.local.weights import batch_limits, batch_rows

    limits = batch_limits()
    assert batch_rows(10, 784, limits) == 1024
    assert batch_rows(20, 16_384, limits) * 20 * 16_384 * 8 <= 64 * 2**20
    partition_bytes = config.get_bytes("neighbors.partition-bytes")
    assert partition_bytes // (4 * 16_384) < config.get("neighbors.partition-rows")
