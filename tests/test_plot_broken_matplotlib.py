"""An installed matplotlib whose import fails (a broken build: its import raises something
other than ImportError) leaves `predict --plot` of forecast and seq2seq with one line
naming matplotlib, as training's loss.png already does, not an internal error."""
import sys

import pytest
from helpers import invoke, one_line_error, plot_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return plot_runs(tmp_path_factory.mktemp("brokenplot"))


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
