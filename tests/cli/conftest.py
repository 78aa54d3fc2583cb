"""Helpers for the command-line tests: a quick command line, and a guard against early work."""

import pytest


def quick_argv(command, tmp_path, out, *extra):
    """A quick run of a command writing to out (input x.npy for embed and sweep)."""
    head = {
        "demo": ["demo", "--n-samples", "300"],
        "embed": ["embed", str(tmp_path / "x.npy"), "--quality-sample", "0"],
        "sweep": ["sweep", str(tmp_path / "x.npy"), "--n-neighbors", "5", "--n-components", "2"],
    }[command]
    return [*head, "--out", str(out), "--scheduler", "synchronous", "--quiet", *extra]


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a cluster starts or the pipeline runs."""
    from dasklle import pipeline, sweep
    from dasklle.cli import common

    def refuse(*args, **kwargs):
        raise AssertionError("work started before --out was checked")

    monkeypatch.setattr(common, "scheduler", refuse)
    monkeypatch.setattr(pipeline, "fit_lle", refuse)
    monkeypatch.setattr(sweep, "reconstruction_error_grid", refuse)
