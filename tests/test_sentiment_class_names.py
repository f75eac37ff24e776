"""How sentiment's outputs name and order a run's classes: a new run numbers numeric
labels by value (1, 2, ..., 10, not 1, 10, 2 as text sorts them) and digit runs in other
labels by their numbers, and eval's tables and predict's lines list the classes in that
order, while a run that saved another order keeps it; predict's tab-separated text quotes
a class name holding a blank or an "=" in its name=probability field, so that the field
reads back as the run's classes; and eval's tables align wide (CJK) class names by the
columns a terminal draws them in."""
import json
import re
import shutil
import unicodedata

import pytest

from helpers import invoke, ok, write_reviews

from recurrent.report import text_table

SMALL = ("--ensemble", 1, "--steps", 5, "--hidden", 8, "--embed-dim", 4, "--threads", 1,
         "--quiet", "--no-plot")
WORDS = "good great lovely superb fine bad awful dull boring poor nice plain".split()
STARS = [str(n) for n in range(1, 11)]
NAMED = ["10 stars", "2 stars", "very negative", "a=b", "正面", "負面"]
NAMED_ORDER = ["2 stars", "10 stars", "a=b", "very negative", "正面", "負面"]


def _train(tmp_path, name, labels):
    rows = [(" ".join(WORDS[(k + j) % len(WORDS)] for j in range(4)) + f" w{i % 5}", label)
            for i in range(20) for k, label in enumerate(labels)]
    data = write_reviews(tmp_path / f"{name}.csv", rows)
    run = tmp_path / name
    ok(invoke("train", "sentiment", "--data", data, *SMALL, "--out", run))
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("class_names")
    return {"stars": _train(root, "stars", STARS), "named": _train(root, "named", NAMED)}


def _report_classes(report):
    """(the per-class rows' class names, the model's confusion matrix's column names)."""
    lines = report.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("class "))
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        if not line.startswith(" "):
            rows.append(re.split(r"\s{2,}", line)[0])
    at = lines.index("confusion matrix of model (rows: true class, columns: predicted)")
    header = re.split(r"\s{2,}", lines[at + 1].removeprefix("true \\ predicted").strip())
    return rows, header


def _scores(line):
    """{class: probability} of a predict text line's name=probability field."""
    field = line.split("\t")[1]
    pairs = re.findall(r'("(?:[^"\\]|\\.)*"|[^\s"=]+)=([0-9.]+)(?: |$)', field)
    assert " ".join(f"{n}={p}" for n, p in pairs) == field, field
    return {json.loads(n) if n.startswith('"') else n: float(p) for n, p in pairs}


def test_numeric_labels_are_listed_in_numeric_order(runs):
    run = runs["stars"]
    with open(run / "config.json", encoding="utf-8") as f:
        assert json.load(f)["task_state"]["classes"] == STARS
    report = ok(invoke("eval", run))
    assert f"classes: {', '.join(STARS)}" in report
    rows, header = _report_classes(report)
    assert rows == STARS and header == STARS
    line = ok(invoke("predict", run, "good great lovely superb"))
    assert list(_scores(line)) == STARS
    answer = json.loads(ok(invoke("predict", run, "--json", "good great lovely superb")))
    assert list(answer["probabilities"]) == STARS


def test_a_run_keeps_the_class_order_it_saved(runs, tmp_path):
    """A run whose state lists its classes as text sorts them (1, 10, 2, ...) reads its
    output index in that order: nothing re-sorts a saved run's classes."""
    run = tmp_path / "text_order"
    shutil.copytree(runs["stars"], run)
    with open(run / "config.json", encoding="utf-8") as f:
        config = json.load(f)
    saved = sorted(STARS)  # 1, 10, 2, ...
    config["task_state"]["classes"] = saved
    with open(run / "config.json", "w", encoding="utf-8") as f:
        json.dump(config, f)
    text = "good great lovely superb"
    ours = json.loads(ok(invoke("predict", runs["stars"], "--json", text)))["probabilities"]
    theirs = json.loads(ok(invoke("predict", run, "--json", text)))["probabilities"]
    assert list(theirs) == saved
    # the same output index, named by the saved order
    assert list(theirs.values()) == list(ours.values())
    rows, header = _report_classes(ok(invoke("eval", run)))
    assert rows == saved and header == saved


def test_predict_text_reads_back_names_with_blanks_and_equals(runs):
    run = runs["named"]
    lines = ok(invoke("predict", run, "good great lovely superb", "bad awful")).splitlines()
    answers = [json.loads(line) for line in ok(invoke(
        "predict", run, "--json", "good great lovely superb", "bad awful")).splitlines()]
    for line, answer in zip(lines, answers):
        scores = _scores(line)
        assert list(scores) == NAMED_ORDER
        assert line.split("\t")[0] == answer["label"]
        assert scores == pytest.approx(answer["probabilities"], abs=6e-4)


def _columns(text):
    """A terminal's columns of ``text`` (wide and full-width characters take two,
    combining marks none)."""
    return sum(0 if unicodedata.combining(c) else
               2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def test_report_aligns_wide_class_names(runs):
    report = ok(invoke("eval", runs["named"])).splitlines()
    at = report.index("confusion matrix of model (rows: true class, columns: predicted)")
    matrix = report[at + 1:at + 2 + len(NAMED)]
    # right-aligned counts: every line of the matrix ends at the same column
    assert len({_columns(line) for line in matrix}) == 1, "\n".join(matrix)
    start = next(i for i, line in enumerate(report) if line.startswith("class "))
    table = report[start:start + 1 + 3 * len(NAMED)]
    assert len({_columns(line) for line in table}) == 1, "\n".join(table)


def test_text_table_counts_combining_marks_as_no_column():
    decomposed = "cafe\u0301"  # "café" with a combining acute accent
    lines = text_table([["name", "n"], [decomposed, "1"], ["tea", "22"]])
    assert len({_columns(line) for line in lines}) == 1, lines


@pytest.mark.parametrize("order", [
    ["-2", "-1", "0", "1", "2"],            # by value, not '-1' before '-2'
    ["1.25", "1.3", "2", "10"],             # decimals by value
    ["1", "2", "10", "inf"],                # not all finite: text, digit runs as numbers
    ["1 star", "2 stars", "10 stars"],
    ["fresh", "rotten"],
])
def test_class_list_orders_labels_by_value(order):
    from recurrent_plugins.sentiment.dataset import class_list
    assert class_list(list(reversed(order)) * 2, "labels.csv") == order
