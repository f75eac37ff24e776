"""`predict --json` is strict JSON, as `--stream` is: a probability that is not a number
(a model whose finite weights overflow on a text) is null, where it was written as NaN,
which strict JSON readers refuse."""
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import invoke, ok

from recurrent.cli import cli


def _strict(text):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning",
                            "ignore:invalid value:RuntimeWarning")
def test_sentiment_json_answer_is_strict_and_the_streams(task_runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(task_runs["sentiment"], run)
    best = run / "best.npz"
    with np.load(best) as saved:
        arrays = dict(saved)
    for name in ("param/head.weight", "param/head.bias"):  # finite, but the logits overflow
        arrays[name] = np.full_like(arrays[name], 3e38)
    np.savez(best, **arrays)
    answer = _strict(ok(invoke("predict", run, "a fine film", "--json")))
    assert answer["probabilities"] == {c: None for c in answer["probabilities"]}, answer
    streamed = CliRunner().invoke(cli, ["predict", str(run), "--stream"],
                                  input="a fine film\n")
    assert _strict(ok(streamed)) == answer
