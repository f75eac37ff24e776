"""Mutation audit, round 2: recurrent/report.paired_line cells the existing tests left
unpinned.

- "p < 0.001" is for p below 0.001 only: p = 0.005 prints as "p 0.005".
- A plugin's entry without the "identical" key is read as identical only when its
  difference is 0 AND p is 1: McNemar gives p = 1 whenever the items only one side gets
  right split evenly, e.g. with a nonzero difference in another metric's units, so p = 1
  alone must not print "identical"."""
import numpy as np

from recurrent.report import paired_line


def _entry(difference, p, **extra):
    return {"test": "McNemar", "metric": "accuracy", "difference": difference, "p": p,
            "items": 200, "unit": "texts", **extra}


def test_small_p_values_print_with_three_decimals_down_to_0001():
    [line] = paired_line({"bow": _entry(0.031, 0.005), "nb": _entry(0.052, 0.0009),
                          "maj": _entry(0.25, 0.001)})
    assert "bow +0.0310 (p 0.005)" in line
    assert "nb +0.0520 (p < 0.001)" in line
    assert "maj +0.2500 (p 0.001)" in line


def test_p_of_one_with_a_difference_is_not_identical():
    [line] = paired_line({"a": _entry(0.01, 1.0), "b": _entry(0.0, 1.0),
                          "c": _entry(0.0, 1.0, identical=False)})
    assert "a +0.0100 (p 1.000)" in line
    assert "b +0.0000 (identical)" in line
    assert "c +0.0000 (p 1.000)" in line
    assert line.startswith("paired over the split's 200 texts, model - baseline in "
                           "accuracy (McNemar): ")


def test_the_legend_comes_only_with_a_p_value_printed():
    """"p < 0.05: more than this split's noise" explains a printed p; a line of
    "identical" and "no test" cells has none to explain."""
    [bare] = paired_line({"a": _entry(0.0, 1.0, identical=True), "b": _entry(0.2, None)})
    assert bare.endswith("a +0.0000 (identical), b +0.2000 (no test)"), bare
    [line] = paired_line({"a": _entry(0.0, 1.0, identical=True), "b": _entry(0.2, 0.01)})
    assert line.endswith("b +0.2000 (p 0.010); p < 0.05: more than this split's noise")


def test_one_item_is_named_in_the_singular():
    [line] = paired_line({"naive": {**_entry(0.5, None), "items": 1, "unit": "windows"}})
    assert line.startswith("paired over the split's 1 window, model - baseline in ")


def test_leader_line_ties_figures_the_table_prints_alike_in_exponent_form():
    """From 1e9 on the tables print 4 significant decimals in exponent form (a diverged
    model's perplexity): 2000000010 and 2000000020 both print 2.0000e+09, so the leader
    line calls them tied although they differ at the 4th decimal."""
    from recurrent.figures import format_value
    from recurrent.report import leader_line

    ours, theirs = 2.0e9 + 10.0, 2.0e9 + 20.0
    assert format_value(ours) == format_value(theirs) == "2.0000e+09"
    assert leader_line({"perplexity": ours}, {"bigram": {"perplexity": theirs}},
                       "perplexity", lower_is_better=True) == [
        "best perplexity: the model and bigram, tied at 2.0000e+09"]


def test_small_and_signed_zero_figures_are_not_printed_as_zero_or_minus_zero():
    from recurrent.figures import format_value

    assert [format_value(v) for v in (-0.0, 1e-5, -3e-7, 0.0001, np.float32(2.5e-6))] == [
        "0.0000", "1.0000e-05", "-3.0000e-07", "0.0001", "2.5000e-06"]
    # two small figures that differ are not a tie at 0.0000
    assert format_value(1e-5) != format_value(2e-5)
    assert [format_value(v, signed=True) for v in (0.25, -0.0, 3.98e28, -1e-6)] == [
        "+0.2500", "+0.0000", "+3.9800e+28", "-1.0000e-06"]
