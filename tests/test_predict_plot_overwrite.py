"""predict --plot wrote a PNG over whatever file it named: the run's own best.npz or
config.json, or the user's data file. It refuses an existing file inside the run
directory, an existing file that is not a PNG and anything that is not a regular file
(recurrent/out_paths.py), with one line on stderr, and leaves the file as it was; an
earlier plot outside the run is replaced, and a new file inside it is written."""
import os

import pytest
from helpers import invoke, ok, one_line_error, plot_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    pytest.importorskip("matplotlib", reason="the plot extra (matplotlib) is not installed")
    return plot_runs(tmp_path_factory.mktemp("plotruns"))


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


def test_a_new_plot_inside_the_run_is_written_but_not_over_its_loss_plot(runs):
    run, inputs = runs["fc"]
    ok(invoke("predict", run, *inputs, "--plot", run / "forecast.png"))
    assert (run / "forecast.png").read_bytes().startswith(b"\x89PNG")
    (run / "loss.png").write_bytes(b"\x89PNG\r\n\x1a\n the run's loss plot")
    one_line_error(invoke("predict", run, *inputs, "--plot", run / "loss.png"),
                   "inside the run directory")
    assert (run / "loss.png").read_bytes().endswith(b"the run's loss plot")


def test_a_named_pipe_is_refused_without_opening_it(runs, tmp_path):
    """Reading a FIFO to see whether it is a PNG blocked until something wrote to it."""
    run, inputs = runs["fc"]
    fifo = tmp_path / "plot.fifo"
    os.mkfifo(fifo)
    one_line_error(invoke("predict", run, *inputs, "--plot", fifo), "not a regular file")


@pytest.mark.parametrize("name", ["s2s", "fc"])
def test_a_plot_named_other_than_png_is_refused(runs, name, tmp_path):
    """The plot is a PNG whatever its name: --plot a.txt (or .pdf, .svg, which users
    expect matplotlib to honour) wrote a PNG there."""
    run, inputs = runs[name]
    for target in ("a.txt", "a.pdf", "noext"):
        one_line_error(invoke("predict", run, *inputs, "--plot", tmp_path / target),
                       "the plot is a PNG image", "ending in .png")
        assert not (tmp_path / target).exists()
    ok(invoke("predict", run, *inputs, "--plot", tmp_path / "UPPER.PNG"))
    assert (tmp_path / "UPPER.PNG").read_bytes().startswith(b"\x89PNG")
