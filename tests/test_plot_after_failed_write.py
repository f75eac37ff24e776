"""A run stopped by a checkpoint it could not write (a full disk) draws loss.png on its way
out. On that same full disk the plot fails too, and its error used to replace the one
that stopped the run: the user read "cannot write RUN/loss.png", not that last.npz was
never written (so --resume starts over). The first error must be the one shown."""
import pytest

import train_toys
from recurrent import checkpoint, loss_plot, trainer
from recurrent.checkpoint import LAST, PLOT_FILE, WriteError
from test_train import train


@pytest.fixture(autouse=True)
def toys():
    with train_toys.registered():
        yield


def _disk_full(monkeypatch, fail_last):
    save = trainer.save_arrays

    def save_arrays(path, arrays, meta):
        if fail_last and path.endswith(LAST):
            raise WriteError(f"cannot write {path}: No space left on device")
        save(path, arrays, meta)

    def atomic_write(path, write, *args):
        raise WriteError(f"cannot write {path}: No space left on device")

    monkeypatch.setattr(trainer, "save_arrays", save_arrays)
    monkeypatch.setattr(loss_plot, "atomic_write", atomic_write)


def test_the_checkpoint_error_is_shown_not_the_plots(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="matplotlib not installed (the plot extra)")
    _disk_full(monkeypatch, fail_last=True)
    with pytest.raises(WriteError, match=LAST):
        train(tmp_path, "toy-sign", epochs=1, plot=True)


def test_a_plot_that_fails_after_a_good_run_is_still_an_error(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="matplotlib not installed (the plot extra)")
    _disk_full(monkeypatch, fail_last=False)
    with pytest.raises(WriteError, match=PLOT_FILE):
        train(tmp_path, "toy-sign", epochs=1, plot=True)
    assert checkpoint.RunDir(str(tmp_path / "run")).has(LAST)
