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
