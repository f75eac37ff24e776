"""The human-readable `recurrent eval` report of a sentiment run.

The metric dicts are those of metrics.classification_metrics (plus "loss"), for the model
and for each baseline alike; this module only lays them out: a note on classes without
texts among those scored, the overall scores, a line
per headline metric naming who scores best, labelled per-class rows, and one labelled
confusion matrix per predictor (rows: true class, columns: predicted class).
`recurrent eval --json` prints the same dicts unchanged.
"""
from __future__ import annotations

from recurrent.figures import counted
from recurrent.report import (format_value, joined, leader_line, metrics_table, overlap_line,
                              text_table)

OVERALL = ("accuracy", "macro_f1", "loss")
HEADLINE = ("accuracy", "macro_f1")  # each gets a line naming who scores best
PER_CLASS = ("precision", "recall", "f1")


def per_class_table(classes: list[str], predictors: dict[str, dict]) -> list[str]:
    """Rows "class, support, metric" with one column per predictor; the class name and its
    support (true rows of that class) are written on the class's first row only."""
    rows = [["class", "support", "metric", *predictors]]
    for c in classes:
        support = next(iter(predictors.values())).get(f"support/{c}")
        for i, metric in enumerate(PER_CLASS):
            rows.append([c if i == 0 else "", format_value(support) if i == 0 else "", metric,
                         *(format_value(m.get(f"{metric}/{c}")) for m in predictors.values())])
    return text_table(rows, align="lrl" + "r" * len(predictors))


def confusion_table(classes: list[str], confusion: list[list[int]]) -> list[str]:
    """A K x K count matrix with its rows and columns named by class."""
    rows = [["true \\ predicted", *classes]]
    rows += [[c, *(str(int(n)) for n in counts)] for c, counts in zip(classes, confusion)]
    return text_table(rows)


def class_names(names: list[str]) -> str:
    """Class names joined with commas; each quoted (repr) when one of them holds a comma,
    which would otherwise read as two classes."""
    if any("," in n for n in names):
        return ", ".join(map(repr, names))
    return ", ".join(names)


def absent_line(classes: list[str], predictors: dict[str, dict]) -> list[str]:
    """The note under the header when some classes have no texts among those scored: their
    per-class rows read 0, and macro_f1 (metrics.classification_metrics) averages only the
    classes with a text or a prediction, so it leaves such a class out unless a predictor
    predicted it, which the note names; [] when every class has a text."""
    first = next(iter(predictors.values()))
    absent = [i for i, c in enumerate(classes) if not first.get(f"support/{c}", 1)]
    if not absent:
        return []
    said, left = [], []
    for i in absent:
        who = [name for name, m in predictors.items()
               if "confusion" in m and sum(row[i] for row in m["confusion"])]
        if who:
            said.append(f"{classes[i]} counts, as an f1 of 0, for {joined(who)}, which "
                        f"predicted it")
        else:
            left.append(classes[i])
    if left:  # one clause for all that no predictor predicted
        said.append(f"{joined(left)} {'is' if len(left) == 1 else 'are'} left out")
    line = (f"note: no texts of class{'' if len(absent) == 1 else 'es'} "
            f"{class_names([classes[i] for i in absent])}: macro_f1 averages only the classes "
            f"with a text or a prediction (as scikit-learn's f1_score(average=\"macro\")): "
            f"{'; '.join(said)}")
    return [line]


def format_report(classes: list[str], metrics: dict, baselines: dict) -> list[str]:
    predictors = {"model": metrics, **baselines}
    rows = sum(int(metrics.get(f"support/{c}", 0)) for c in classes)
    lines = [f"{counted(rows, 'text')}, classes: {class_names(classes)}",
             *overlap_line(metrics, rows, "texts"), *absent_line(classes, predictors), ""]
    lines += metrics_table(metrics, baselines, names=[n for n in OVERALL if n in metrics])
    for key in HEADLINE:
        lines += leader_line(metrics, baselines, key, lower_is_better=False)
    lines += ["", *per_class_table(classes, predictors)]
    for name, m in predictors.items():
        if "confusion" in m:
            lines += ["", f"confusion matrix of {name} (rows: true class, columns: predicted)",
                      *confusion_table(classes, m["confusion"])]
    return lines
