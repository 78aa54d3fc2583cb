"""What the commands share: --out refused before any work starts."""

import numpy as np
import pytest
import zarr

from dasklle.cli import main
from dasklle.io.store import read_embedding

from ..conftest import snapshot
from .conftest import quick_argv


@pytest.mark.parametrize("command", ["demo", "embed", "sweep"])
@pytest.mark.parametrize(
    ("out", "words"),
    [
        ("taken.txt", "is an existing file, not a zarr store"),
        ("mine", "is a folder not written by dasklle"),
        ("x.zarr", "is a zarr array not written by dasklle"),
        ("taken.txt/o.zarr", "taken.txt' is a file, not a folder"),
    ],
)
@pytest.mark.parametrize("overwrite", [False, True])
def test_bad_out_is_refused_before_any_work(
    command, out, words, overwrite, tmp_path, no_work, capsys
):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((60, 3)))
    zarr.create_array(store=str(tmp_path / "x.zarr"), data=np.ones((60, 3)))
    (tmp_path / "taken.txt").write_text("mine")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    extra = ["--overwrite"] if overwrite else []
    assert main(quick_argv(command, tmp_path, tmp_path / out, *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dasklle {command}: error: --out ") and words in err
    assert err.count("\n") == 1 and "Traceback" not in err
    if overwrite and "not a folder" not in words:
        assert "even with --overwrite" in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("command", ["demo", "embed", "sweep"])
def test_read_only_out_is_refused(command, tmp_path, no_work, capsys, monkeypatch):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((60, 3)))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", refuse)  # as a read-only file system would
    assert main(quick_argv(command, tmp_path, tmp_path / "new" / "o.zarr")) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is not writable" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_out_of_another_input_needs_overwrite(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((60, 3)))
    out = tmp_path / "o.zarr"
    assert main(quick_argv("embed", tmp_path, out)) == 0
    assert main(quick_argv("embed", tmp_path, out)) == 0  # the same input resumes
    np.save(tmp_path / "x.npy", rng.random((80, 3)))
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert main(quick_argv("embed", tmp_path, out)) == 2
    err = capsys.readouterr().err
    assert "holds results of a different input; pass --overwrite" in err
    assert err.count("\n") == 1 and snapshot(tmp_path) == before
    assert main(quick_argv("embed", tmp_path, out, "--overwrite")) == 0
    assert read_embedding(out)[0].shape == (80, 2)
    # demo's swiss roll is another input too.
    assert main(quick_argv("demo", tmp_path, out)) == 2
    assert "different input" in capsys.readouterr().err


def test_log_lines_go_to_stderr_while_a_command_runs(capsys):
    import logging

    from dasklle.cli.common import log_to_stderr

    logger = logging.getLogger("dasklle")
    handlers, level = list(logger.handlers), logger.level
    for _ in range(2):  # a second command does not print each line twice
        with log_to_stderr():
            logger.info("neighbors ...")
        assert capsys.readouterr().err == "[dasklle] neighbors ...\n"
    with log_to_stderr(quiet=True):
        logger.info("neighbors ...")
        logger.warning("a warning")
    assert capsys.readouterr().err == "[dasklle] a warning\n"
    assert (logger.handlers, logger.level) == (handlers, level)


def test_log_lines_are_not_doubled_by_a_handler_set_before(capsys, monkeypatch):
    import io
    import logging

    from dasklle.cli.common import log_to_stderr

    logger = logging.getLogger("dasklle")
    earlier = logging.StreamHandler(io.StringIO())  # as verbose=True installs without a config
    monkeypatch.setattr(logger, "handlers", [earlier])
    with log_to_stderr():
        logger.info("weights ...")
    assert capsys.readouterr().err == "[dasklle] weights ...\n"
    assert earlier.stream.getvalue() == "" and logger.handlers == [earlier]


def test_progress_lines_of_a_run(tmp_path, capsys):
    import logging

    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((60, 3)))
    argv = [a for a in quick_argv("embed", tmp_path, tmp_path / "o.zarr") if a != "--quiet"]
    handlers = list(logging.getLogger("dasklle").handlers)
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err and all(line.startswith("[dasklle] ") for line in err.splitlines())
    assert logging.getLogger("dasklle").handlers == handlers
