"""An installed matplotlib whose import fails (a broken build: its import raises something
other than ImportError) leaves `predict --plot` of forecast and seq2seq with one line
naming matplotlib, as training's loss.png already does, not an internal error."""
import sys

import pytest
from helpers import invoke, ok, one_line_error


def _tsv(path):
    import random
    rng = random.Random(0)
    lines = []
    for _ in range(200):
        s = "".join(rng.choice("abcde") for _ in range(rng.randint(2, 6)))
        lines.append(s + "\t" + " ".join(s.upper()))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("brokenplot")
    s2s = root / "s2s"
    ok(invoke("train", "seq2seq", "--data", _tsv(root / "pairs.tsv"), "--steps", 2,
              "--hidden", 8, "--embed-dim", 4, "--threads", 1, "--quiet", "--no-plot",
              "--out", s2s))
    fc = root / "fc"
    ok(invoke("train", "forecast", "--steps", 2, "--hidden", 8, "--window", 8, "--inputs",
              "level", "--model", "rnn", "--threads", 1, "--quiet", "--no-plot",
              "--out", fc))
    return {"s2s": (s2s, ["abc"]), "fc": (fc, [])}


@pytest.fixture
def broken_matplotlib(tmp_path, monkeypatch):
    """A matplotlib package first on the path whose import raises RuntimeError; any
    matplotlib imported before is forgotten for the test (restored after it)."""
    package = tmp_path / "site" / "matplotlib"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        'raise RuntimeError("this matplotlib build is broken")\n', encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.mark.parametrize("name", ["s2s", "fc"])
def test_predict_plot_with_a_broken_matplotlib_is_one_line(runs, name, broken_matplotlib,
                                                           tmp_path):
    run, inputs = runs[name]
    out = tmp_path / "plot.png"
    result = invoke("predict", run, *inputs, "--plot", out)
    one_line_error(result, "matplotlib", "this matplotlib build is broken")
    assert "internal error" not in result.stderr
    assert not out.exists()
