"""predict --plot wrote a PNG over whatever file it named: the run's own best.npz or
config.json, or the user's data file. It refuses a path inside the run directory and an
existing file that is not a PNG (recurrent/out_paths.py), as export refuses its --out,
with one line on stderr, and leaves the file as it was; an earlier plot is replaced."""
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
    pytest.importorskip("matplotlib")
    root = tmp_path_factory.mktemp("plotruns")
    s2s = root / "s2s"
    ok(invoke("train", "seq2seq", "--data", _tsv(root / "pairs.tsv"), "--steps", 2,
              "--hidden", 8, "--embed-dim", 4, "--threads", 1, "--quiet", "--no-plot",
              "--out", s2s))
    fc = root / "fc"
    ok(invoke("train", "forecast", "--steps", 2, "--hidden", 8, "--window", 8, "--inputs",
              "level", "--model", "rnn", "--threads", 1, "--quiet", "--no-plot",
              "--out", fc))
    return {"s2s": (s2s, ["abc"]), "fc": (fc, [])}


@pytest.mark.parametrize("name", ["s2s", "fc"])
@pytest.mark.parametrize("target", ["best.npz", "config.json"])
def test_plot_inside_the_run_is_refused_and_the_run_still_loads(runs, name, target):
    run, inputs = runs[name]
    before = (run / target).read_bytes()
    one_line_error(invoke("predict", run, *inputs, "--plot", run / target),
                   "inside the run directory")
    assert (run / target).read_bytes() == before
    ok(invoke("predict", run, *inputs))


@pytest.mark.parametrize("name", ["s2s", "fc"])
def test_plot_over_a_data_file_is_refused(runs, name, tmp_path):
    run, inputs = runs[name]
    data = tmp_path / "mine.csv"
    data.write_text("t,value\n1,2\n", encoding="utf-8")
    one_line_error(invoke("predict", run, *inputs, "--plot", data), "not a PNG")
    assert data.read_text(encoding="utf-8") == "t,value\n1,2\n"


def test_plot_replaces_an_earlier_plot(runs, tmp_path):
    run, inputs = runs["s2s"]
    png = tmp_path / "attention.png"
    ok(invoke("predict", run, *inputs, "--plot", png))
    ok(invoke("predict", run, *inputs, "--plot", png))
    assert png.read_bytes().startswith(b"\x89PNG")
