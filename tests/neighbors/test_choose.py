"""Which search "auto" runs, and the fallback when a single-task index would not fit."""

import pytest

from dasklle.neighbors import choose_algorithm


def test_auto_choice():
    assert choose_algorithm("auto", 10**6, 3) == "kd_tree"
    assert choose_algorithm("auto", 5000, 784) == "brute"
    assert choose_algorithm("auto", 10**6, 784) == "projected"
    assert choose_algorithm("auto", 20_000, 784) == "projected"
    assert choose_algorithm("auto", 10**6, 50) == "projected"
    assert choose_algorithm("ball_tree", 10, 3) == "ball_tree"


def test_a_single_task_index_that_would_not_fit_runs_partitioned(client):
    """On 2 GiB workers a task may use 512 MiB: a KD-tree over 10^8 points or pynndescent over
    10^6 would not fit, so the partitioned search runs instead, with a warning."""
    assert choose_algorithm("auto", 10**8, 3) == "projected"
    with pytest.warns(UserWarning, match="running the partitioned search"):
        assert choose_algorithm("nndescent", 10**6, 50) == "projected"
    assert choose_algorithm("nndescent", 20_000, 50) == "nndescent"
