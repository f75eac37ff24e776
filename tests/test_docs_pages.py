"""The documentation pages that describe code by name: docs/sentiment.md's option tables
against `recurrent train sentiment`'s options and defaults, and docs/ARCHITECTURE.md's
module map against the files under recurrent/, docs/training.md's run directory against
the keys of a run's config.json and metrics.jsonl. A page that names an option or module
the code no longer has, or leaves out one it has, fails here; so does an import against
the module map's order that the map does not name as an exception."""
import ast
import re
from pathlib import Path

import click

from recurrent.cli import cli
from recurrent.config import SHARED_DEFAULTS
from recurrent.plugins import get_task

ROOT = Path(__file__).resolve().parent.parent


def sentiment_rows() -> dict:
    """{flags of a row of docs/sentiment.md's option tables (a tuple): its default cell}."""
    rows = {}
    for line in (ROOT / "docs" / "sentiment.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `--"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[tuple(re.findall(r"`(--[\w-]+)`", cells[0]))] = cells[1]
    return rows


def train_params():
    command = cli.commands["train"].get_command(click.Context(cli), "sentiment")
    return [p for p in command.params if p.name != "help"]


def shown_default(param) -> str | None:
    """The default as `--help` shows it, for the options whose default is a value."""
    if not param.show_default or param.default is None:
        return None
    if isinstance(param, click.Option) and param.is_flag:
        if param.secondary_opts:
            return (param.opts[0] if param.default else param.secondary_opts[0]).lstrip("-")
        return "on" if param.default else "off"
    return str(param.default)


def test_the_sentiment_page_lists_every_train_option_with_its_default():
    rows = sentiment_rows()
    params = train_params()
    flags = {tuple(p.opts + p.secondary_opts): p for p in params}
    assert sorted(set(flags) - set(rows)) == []  # options the page leaves out
    assert sorted(set(rows) - set(flags)) == []  # rows naming no option
    for key, param in flags.items():
        expected = shown_default(param)
        if expected is not None:
            assert rows[key].split(" (")[0] == expected, key


def test_the_sentiment_page_marks_the_task_own_defaults():
    # "(task)" marks a shared option whose default the task replaces, and only those
    own = {name for name, value in get_task("sentiment").defaults().items()
           if SHARED_DEFAULTS.get(name) != value}
    marked = {p.name for p in train_params()
              if "(task)" in sentiment_rows()[tuple(p.opts + p.secondary_opts)]}
    assert marked == own


def test_the_readme_links_every_task_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in ("sentiment", "forecast", "seq2seq"):
        assert (ROOT / "docs" / f"{page}.md").is_file()
        assert f"docs/{page}.md" in readme


def test_the_module_map_names_every_file_of_the_package():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text[text.index("## Module map"):text.index("## Layer API")]
    package = ROOT / "recurrent"
    files = [p for p in package.rglob("*") if p.suffix in (".py", ".pyx", ".pxd", ".h")]
    # C written by hand, not by cythonize from a .pyx of the same name
    files += [p for p in package.rglob("*.c") if not p.with_suffix(".pyx").exists()]
    missing = []
    for path in files:
        # a package's __init__.py is named with its folder: seq2seq/__init__.py
        name = f"{path.parent.name}/{path.name}" if path.name == "__init__.py" else path.name
        if not re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", section):
            missing.append(path.relative_to(ROOT).as_posix())
    assert sorted(missing) == []


def map_levels(section: str) -> dict:
    """{module or package under recurrent/: its level} from the module map's numbered
    levels 1-8 (level 9 is the plugins/ folder, outside the package): every file
    (`name.py`) and folder (`name/`) a level names in backticks, at the first level
    naming it (a later one may refer back to it)."""
    levels = {}
    parts = re.split(r"^(\d)\. ", section[:section.index("\n9. ")], flags=re.M)
    for number, text in zip(parts[1::2], parts[2::2]):
        for token in re.findall(r"`([\w/.]+?(?:\.py|/))`", text):
            name = token.rstrip("/").split("/")[-1].removesuffix(".py")
            if name != "__init__":
                levels.setdefault(name, int(number))
    return levels


def imports_of(path: Path) -> set:
    """The top-level modules and packages of recurrent (the name after `recurrent.`) that
    the file at ``path`` imports, at import or inside a function."""
    relative = path.relative_to(ROOT).with_suffix("").parts  # ("recurrent", ..., stem)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(relative[:len(relative) - node.level]) if node.level else []
            base += node.module.split(".") if node.module else []
            names = [base + [alias.name] for alias in node.names]
        else:
            continue
        found.update(n[1] for n in names if n[0] == "recurrent" and len(n) > 1)
    return found


def test_the_module_map_names_every_import_against_its_order():
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text[text.index("## Module map"):text.index("## Layer API")]
    levels = map_levels(section)
    exceptions = section[section.index("The exceptions to the order"):
                         section.index("The registry and the plugin contract")]
    clauses = exceptions.split(";")

    def token(name):
        return f"`{name}/`" if (ROOT / "recurrent" / name).is_dir() else f"`{name}.py`"

    unnamed = []
    for path in sorted((ROOT / "recurrent").rglob("*.py")):
        importer = path.relative_to(ROOT / "recurrent").with_suffix("").parts[0]
        if importer not in levels:  # beside the levels: the registry, the contract
            continue
        for imported in imports_of(path):
            if levels.get(imported, 0) > levels[importer] and not any(
                    token(importer) in c and token(imported) in c for c in clauses):
                unnamed.append(f"{path.relative_to(ROOT).as_posix()} imports {imported}")
    assert levels["cli"] == 8 and levels["layers"] == 4 and levels["_kernels"] == 2
    assert unnamed == []


def run_files_block() -> str:
    """docs/training.md's description of a run directory's config.json and
    metrics.jsonl (the indented block from RUN/config.json to RUN/loss.png)."""
    text = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    return text[text.index("    RUN/config.json"):text.index("    RUN/loss.png")]


def test_the_training_page_names_every_key_a_run_writes(tmp_path):
    import train_toys
    from helpers import invoke, ok
    from recurrent.checkpoint import RunDir
    run = tmp_path / "run"
    with train_toys.registered():
        ok(invoke("train", "toy-sign", "--epochs", 1, "--log-every", 3, "--quiet",
                  "--out", run))
    block = run_files_block()
    info = RunDir(str(run)).info()
    keys = set(info) | {k for r in RunDir(str(run)).read_metrics() for k in r}
    missing = sorted(k for k in keys if not re.search(rf"\b{k}\b", block))
    assert not missing, f"docs/training.md's run directory leaves out {missing}"
    assert "counted from 1" in block  # what "step" and "epoch" count


def eval_json_block() -> str:
    """docs/training.md's description of `recurrent eval --json` (the paragraph from
    "`--json` prints one object" to its "With `--backtest N`" sentence)."""
    text = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    start = text.index("`--json` prints one object and nothing else")
    return text[start:text.index("With `--backtest N`", start)]


def test_the_training_page_names_every_key_of_eval_json_and_its_choice(tmp_path):
    import json

    from helpers import invoke, ok
    run = tmp_path / "run"
    # forecast chooses its window and input mode among trained candidates
    ok(invoke("train", "forecast", "--out", run, "--hidden", 4, "--steps", 3, "--threads", 1,
              "--quiet", "--no-plot"))
    report = json.loads(ok(invoke("eval", run, "--json")))
    block = re.sub(r"\s+", " ", eval_json_block())
    missing = sorted(k for k in report if f"`{k}`" not in block)
    assert not missing, f"docs/training.md's eval --json leaves out {missing}"
    chose = block[block.index("`chose` (a run that chose among candidates:"):]
    chose = chose[:chose.index(")")]
    missing = sorted(k for k in report["chose"] if f"`{k}`" not in chose)
    assert not missing, f"docs/training.md's eval --json \"chose\" leaves out {missing}"
