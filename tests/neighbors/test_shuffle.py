"""The shuffle into partitions: every row joins its nearest partitions."""

import numpy as np
import pytest

from dasklle.neighbors.shuffle import partition_members


@pytest.mark.parametrize("n_parts", [2, 3, 40])
def test_partition_members_are_the_nearest_centres(n_parts):
    rng = np.random.default_rng(n_parts)
    z = (rng.standard_normal((500, 8)) * 4 + 2).astype(np.float32)
    centres = (rng.standard_normal((n_parts, 8)) * 3).astype(np.float32)
    members = partition_members(z, centres, 3)
    copies = min(3, n_parts)
    distance = ((z[:, None, :].astype(np.float64) - centres[None]) ** 2).sum(axis=2)
    nearest = np.argsort(distance, axis=1)[:, :copies]
    for p in range(n_parts):
        np.testing.assert_array_equal(members[p], np.flatnonzero((nearest == p).any(axis=1)))


def test_the_shuffle_through_files_is_a_key_per_block_and_reads_back_every_copy(tmp_path):
    """Through files, the shuffle's graph grows with the blocks, not blocks x partitions (a key
    per piece kept the scheduler busy for minutes at 1,000,000 rows), and each partition reads
    back exactly its members' rows, in row order."""
    import dask
    import dask.array as da

    from dasklle.neighbors.shuffle import read_partition_rows, shuffle_rows
    from dasklle.tasks.blocks import row_offsets

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 6)).astype(np.float32)
    dX = da.from_array(X, chunks=(250, -1))
    mean, axes = np.zeros(6), np.eye(6)[:, :4]
    centres = rng.standard_normal((30, 4)).astype(np.float32)
    written = shuffle_rows(dX, np.arange(30), centres, mean, axes, 3, str(tmp_path))
    assert len(dict(written.__dask_graph__())) < 4 * 8  # 8 blocks, 30 partitions
    assert dask.compute(written, scheduler="sync")[0] == 3 * 2000
    members = partition_members(X @ axes.astype(np.float32), centres, 3)
    for p in range(30):
        rows, points = read_partition_rows(str(tmp_path), row_offsets(dX.chunks[0]), p, 30)
        np.testing.assert_array_equal(rows, members[p])
        np.testing.assert_array_equal(points, X[members[p]])


def test_a_killed_process_scratch_directory_is_removed_by_the_next_one(tmp_path):
    """The next shuffle removes the directories of this host's processes that no longer run,
    and leaves a running process's directory and anything else alone."""
    import os
    import socket
    import subprocess
    import sys

    import dask

    from dasklle.neighbors.shuffle import new_shuffle_directory

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    owners = {
        "dasklle-shuffle-killed": f"{socket.gethostname()} {ended.pid}",
        "dasklle-shuffle-running": f"{socket.gethostname()} {os.getpid()}",
        "dasklle-shuffle-elsewhere": f"another-host {ended.pid}",
    }
    for name, owner in owners.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "owner").write_text(owner)
        (tmp_path / name / "rows0.npy").write_bytes(b"x")
    (tmp_path / "user-folder").mkdir()
    with dask.config.set({"temporary-directory": str(tmp_path)}):
        created = new_shuffle_directory()
    left = {p.name for p in tmp_path.iterdir()}
    assert "dasklle-shuffle-killed" not in left
    assert {"dasklle-shuffle-running", "dasklle-shuffle-elsewhere", "user-folder"} <= left
    assert os.path.basename(created) in left
