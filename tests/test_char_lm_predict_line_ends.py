"""char-lm `predict` prints the prime and the generated characters as they are, each line
as it ends, with one "\\n" added at the end only when the text does not end with one (as
a text file ends): a text that ends with a line break gets no blank line after it."""
import pytest

from helpers import invoke, ok, train_tiny

SAMPLE = ("--seed", 5, "--temperature", 5, "--prime", "the")


def printed(run, *args):
    result = invoke("predict", run, *args)
    assert result.exit_code == 0, result.output + result.stderr
    return result.stdout_bytes


@pytest.mark.parametrize("prime, expected", [("ab", b"ab\n"), ("ab\n", b"ab\n"),
                                             ("a\n\nb", b"a\n\nb\n"), ("a\n\n", b"a\n\n")])
def test_the_prime_alone_is_printed_as_it_is(task_runs, prime, expected):
    assert printed(task_runs["char-lm"], "--length", 0, "--prime", prime) == expected


def test_the_default_prime_alone_is_one_line_break(task_runs):
    assert printed(task_runs["char-lm"], "--length", 0) == b"\n"


def test_a_sample_ending_with_a_line_break_has_no_blank_line_after_it(task_runs):
    run = task_runs["char-lm"]
    whole = printed(run, "--length", 300, *SAMPLE)  # a sample's first k characters are
    end = whole.index(b"\n")                        # the same for any --length >= k
    assert end > len("the")
    generated = end + 1 - len("the")
    assert printed(run, "--length", generated, *SAMPLE) == whole[:end + 1]
    assert printed(run, "--length", generated - 1, *SAMPLE) == whole[:end] + b"\n"


def test_without_a_line_break_the_default_prime_is_the_first_character_and_help_says_so(
        tmp_path):
    # a text with no line break: predict starts from its vocabulary's first character
    # (the lowest code point), prints it as the prime, and --help says that default
    text = tmp_path / "row.txt"
    text.write_text("ba " * 900, encoding="utf-8")
    run = tmp_path / "run"
    ok(train_tiny(text, run))
    assert printed(run, "--length", 0) == b" \n"
    assert printed(run, "--length", 3, "--seed", 1)[:1] == b" "
    help_text = " ".join(ok(invoke("predict", run, "--help")).split())
    assert ("default: a line break, as the training text writes them, or the "
            "vocabulary's first character (lowest code point) when it has none") in help_text
