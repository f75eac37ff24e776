"""The note predict and export print when an ensemble reads a member's last.npz in place
of its best.npz names that member (the other members use their best parameters)."""
from __future__ import annotations

import os
import shutil

from helpers import bundled_reviews, invoke, ok, write_reviews

SMALL = ["--hidden", "8", "--embed-dim", "8", "--batch-size", "64", "--threads", "1",
         "--quiet", "--no-plot"]


def test_the_note_names_the_member_without_a_best_checkpoint(tmp_path):
    csv = write_reviews(tmp_path / "slice.csv", bundled_reviews(60))
    trained = tmp_path / "trained"
    ok(invoke("train", "sentiment", "--data", csv, "--out", trained, "--ensemble", "3",
              "--steps", "4", *SMALL))
    run = tmp_path / "ens"
    shutil.copytree(trained, run)
    os.remove(run / "member-1" / "best.npz")
    result = invoke("predict", run, "a fine film")
    ok(result)
    member = os.path.join(str(run), "member-1")
    assert result.stderr == (f"note: {member} has no best checkpoint "
                             f"({os.path.join(member, 'best.npz')} is missing, though an "
                             f"evaluation saved it; restore it for the best parameters): "
                             f"using the latest parameters, last.npz\n"), result.stderr
    os.remove(run / "member-2" / "best.npz")
    result = invoke("export", run, "--format", "onnx", "--out", tmp_path / "ens.onnx")
    ok(result)
    assert (f"note: {member}, {os.path.join(str(run), 'member-2')} have no best "
            f"checkpoint (best.npz is missing") in result.stderr, result.stderr
    # a plain run's note is unchanged: the run itself named
    alone = tmp_path / "alone"
    shutil.copytree(trained / "member-0", alone)
    os.remove(alone / "best.npz")
    result = invoke("predict", alone, "a fine film")
    ok(result)
    assert result.stderr.startswith(f"note: {alone} has no best checkpoint ({alone}"), \
        result.stderr
