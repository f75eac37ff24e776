"""The training summary says when --epochs ended a run before the --steps it was given
(the "step i/N" total is then below --steps), for a run, its resume and an ensemble;
a run that --steps ends says nothing more."""
from helpers import invoke, ok, tiny_text, write_csv

TINY = ("--hidden", 4, "--seq-len", 16, "--batch-size", 16, "--threads", 1, "--quiet",
        "--no-plot")


def steps_per_epoch(path):
    """Steps in one epoch of a run of ``TINY``: that of a one-epoch run."""
    out = ok(invoke("train", "char-lm", "--data", path, *TINY, "--epochs", 1,
                    "--out", path.parent / "one"))
    return int(out.split("done after ")[1].split(" step")[0])


def test_epochs_before_steps_is_said(tmp_path):
    text = tiny_text(tmp_path)
    per_epoch = steps_per_epoch(text)
    run, steps = tmp_path / "run", 3 * per_epoch + 5
    out = ok(invoke("train", "char-lm", "--data", text, *TINY, "--epochs", 2,
                    "--steps", steps, "--out", run))
    assert out.startswith(f"done after {2 * per_epoch} steps (--epochs 2 ended training "
                          f"before --steps {steps}): "), out
    out = ok(invoke("train", "char-lm", "--resume", run, "--epochs", 3, "--quiet"))
    assert out.startswith(f"done after {3 * per_epoch} steps (--epochs 3 ended training "
                          f"before --steps {steps}): "), out
    out = ok(invoke("train", "char-lm", "--resume", run, "--epochs", 5, "--quiet"))
    assert out.startswith(f"done after {steps} steps: "), out


def test_an_ensemble_says_it_once(tmp_path):
    texts = write_csv(tmp_path / "texts.csv", ("text", "label"),
                      [[f"{'good fine' if i % 2 else 'bad awful'} text {i}",
                        "pos" if i % 2 else "neg"] for i in range(60)])
    out = ok(invoke("train", "sentiment", "--data", texts, "--ensemble", 2, "--epochs", 1,
                    "--steps", 1000, "--hidden", 4, "--threads", 1, "--quiet",
                    "--no-plot", "--out", tmp_path / "ens"))
    assert " each (--epochs 1 ended training before --steps 1000): " in out, out
