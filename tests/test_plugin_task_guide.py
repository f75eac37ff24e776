"""docs/plugins-tasks.md builds a task plugin from an empty folder: its code, taken from
the page as it stands, registers, trains, evaluates (on its splits and on another file),
predicts, and refuses bad input in one line, so the guide a plugin author follows works."""
import importlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import invoke, ok, one_line_error

from recurrent import plugins

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "plugins-tasks.md"
PLUGIN = "test-task-guide"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)


def _examples(n, seed):
    """label<TAB>symbols lines: DNA-like strings, labelled by whether they hold TATA."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        symbols = "".join(rng.choice(list("ACGT"), int(rng.integers(8, 16))))
        if rng.random() < 0.5:
            at = int(rng.integers(0, len(symbols) - 3))
            symbols = symbols[:at] + "TATA" + symbols[at + 4:]
        lines.append(f"{'motif' if 'TATA' in symbols else 'none'}\t{symbols}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def guide_task(tmp_path, monkeypatch):
    init, task = _python_blocks()
    package = tmp_path / "src" / "motif_task"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(init)
    (package / "task.py").write_text(task)
    (package / "motifs.tsv").write_text(_examples(600, 0))
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module("motif_task")
    plugins.register_plugin(module, PLUGIN, version="0.1.0")
    try:
        yield tmp_path
    finally:
        plugins.unregister_plugin(PLUGIN)
        for name in [m for m in sys.modules if m.startswith("motif_task")]:
            del sys.modules[name]


def test_the_guides_task_trains_evaluates_and_predicts(guide_task):
    listing = json.loads(ok(invoke("plugins", "--json")))
    assert any(t["name"] == "motif" for t in listing["tasks"])
    assert "--data" in ok(invoke("train", "motif", "--help"))
    ok(invoke("train", "motif", "--out", "run", "--threads", 1, "--quiet", "--no-plot"))
    report = json.loads(ok(invoke("eval", "run", "--json")))
    model, majority = report["metrics"], report["baselines"]["majority"]
    assert model["accuracy"] > majority["accuracy"] + 0.2, report  # the motif is learnt
    # another file, its labels swapped: scored as that file, not as the test split
    swapped = _examples(50, 1).replace("motif\t", "x\t").replace("none\t", "motif\t")
    (guide_task / "other.tsv").write_text(swapped.replace("x\t", "none\t"))
    other = json.loads(ok(invoke("eval", "run", "--data", "other.tsv", "--json")))
    assert other["metrics"]["accuracy"] < 0.3 < model["accuracy"], other
    lines = ok(invoke("predict", "run", "GGTATAGGCC", "GGCCGGCCGG")).splitlines()
    assert lines == ["GGTATAGGCC\tmotif", "GGCCGGCCGG\tnone"]


def test_the_guides_task_refuses_bad_input_in_one_line(guide_task):
    (guide_task / "bad.tsv").write_text("motif\tACGT\nno tab here\n")
    one_line_error(invoke("train", "motif", "--data", "bad.tsv", "--out", "r"),
                   "bad.tsv, line 2: expected label<TAB>symbols")
    (guide_task / "one.tsv").write_text("a\tACGT\n" * 20)
    one_line_error(invoke("train", "motif", "--data", "one.tsv", "--out", "r"),
                   "every example has the label 'a'")
    assert not (guide_task / "r").exists()
