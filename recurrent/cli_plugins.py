"""`recurrent plugins`, `recurrent plugins check NAME` and `recurrent info`.

Click objects only: recurrent/cli.py adds them to the root group with ``cli.add_command``.
Errors are click exceptions (one line on stderr, exit status 1 or 2), so the commands behave
the same under any root group.
"""
from __future__ import annotations

import json
import math
import sys
import time

import click

from . import extras, plugins, std_streams
from .checks import one_line
from .errors import UserError
from .cli_options import THREAD_COUNT

CORE = "recurrent"  # provider shown for commands the framework itself defines


def _listing(ctx: click.Context) -> dict:
    """Everything loaded, as plain data: {"cells": [...], ..., "broken": [...]}."""
    listing = {}
    for kind in ("cell", "loss", "task", "command"):
        rows = [{"name": e.name, "plugin": e.plugin, "version": e.version,
                 "help": _summary(e)} for e in plugins.entries(kind).values()]
        if kind == "command":
            rows += _core_commands(ctx, {row["name"] for row in rows})
        listing[plugins.PLURAL[kind]] = sorted(rows, key=lambda row: row["name"])
    listing["broken"] = [{"plugin": name, "error": error}
                         for name, error in sorted(plugins.broken_plugins().items())]
    return listing


# the longest summary a command's help gives whole (click cuts one longer at a word)
SUMMARY_LIMIT = 1000
# the width of the listing's help column: longer summaries end in "..." there
SHOWN_HELP = 60


def _summary(entry) -> str:
    """The entry's one-line summary, whole (`plugins --json`; the table shortens it)."""
    if entry.kind == "command":
        return entry.obj.get_short_help_str(limit=SUMMARY_LIMIT)
    if entry.kind == "task":
        return str(getattr(entry.obj, "help", ""))
    doc = (type(entry.obj).__doc__ or "").strip().splitlines()
    return doc[0] if doc else ""


def _shorten(text: str, limit: int = SHOWN_HELP) -> str:
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def _core_commands(ctx: click.Context, from_plugins: set) -> list[dict]:
    """Commands of the root group that no plugin added (train, eval, plugins, ...)."""
    from . import __version__
    root = ctx.find_root().command
    if not isinstance(root, click.Group) or root is ctx.command:
        return []
    return [{"name": name, "plugin": CORE, "version": __version__,
             "help": cmd.get_short_help_str(limit=SUMMARY_LIMIT)}
            for name, cmd in root.commands.items() if name not in from_plugins]


def _table(rows: list[dict], columns: list[str]) -> str:
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(str(r[c]).ljust(w) for c, w in zip(columns, widths)).rstrip()
              for r in rows]
    return "\n".join(lines)


@click.group("plugins", invoke_without_command=True,
             short_help="List cells, losses, tasks, commands and their plugins.")
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON.")
@click.pass_context
def plugins_group(ctx, as_json):
    """List cells, losses, tasks and commands, with the plugin providing each.

    Broken plugins (failed import, name clash, misspelled hook) are listed with their error.
    Third-party plugins load from the "recurrent" entry-point group; set
    RECURRENT_NO_ENTRYPOINTS=1 to skip them or RECURRENT_PLUGINS=a,b to allow only some.
    """
    if ctx.invoked_subcommand is not None:
        return
    listing = _listing(ctx)
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    for key in ("cells", "losses", "tasks", "commands"):
        click.echo(f"{key.capitalize()}:")
        rows = listing[key]
        rows = [{**row, "help": _shorten(row["help"])} for row in rows]
        click.echo(_indent(_table(rows, ["name", "plugin", "version", "help"])) if rows
                   else "  (none)")
        click.echo()
    if listing["broken"]:
        click.echo("Broken plugins:")
        click.echo(_indent(_table(listing["broken"], ["plugin", "error"])))



def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


@plugins_group.command("check", short_help="Run the conformance kit on cells, losses or tasks.")
@click.argument("names", metavar="NAME...", nargs=-1)
@click.option("--all", "check_all", is_flag=True,
              help="Check every registered cell and loss (with --kind task: every task).")
@click.option("--kind", type=click.Choice(["cell", "loss", "task"]), default=None,
              help="Check the cell, loss or task of this name (needed only if several "
                   "exist).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the random inputs and parameters.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def check_command(names, check_all, kind, seed, as_json):
    """Run the conformance kit on the cells, losses or tasks NAME... (or --all).

    Cells: float64 finite-difference gradients for x, states and every parameter; shapes;
    the same results from the same inputs; sequence vs step; lengths (padding invariance,
    zero outputs and ignored gradients past a row's length); float32; threads; masks
    (cells with mask_kinds); int8 beside float32 (cells with quantize and infer_int8).
    Losses: gradients, masks, means, the same result from the same arguments. Tasks, on
    their default options: options, a state config.json keeps, a model spec the framework
    builds, check_state, batches the model and the loss take, the same batches from the
    same seed, evaluate and baselines. Prints PASS/FAIL per check and exits 1 if any
    check fails, or, with --all, if a plugin is broken (`recurrent plugins`).
    """
    if check_all:
        if names:
            raise click.UsageError("give NAME... or --all, not both")
        kinds = ("task",) if kind == "task" else ("cell", "loss")
        targets = [(n, k) for k in kinds if kind in (None, k)
                   for n in sorted(plugins.entries(k))]
    elif names:
        targets = [(n, kind) for n in names]
    else:
        raise click.UsageError("give the NAME of a cell, loss or task to check, or --all")
    try:  # every name found before any is checked: a typo costs no checks' time
        targets = [(name, _find(name, wanted)) for name, wanted in targets]
    except UserError as exc:
        raise click.BadParameter(str(exc), param_hint="'NAME'") from None
    from . import conformance
    reports, any_failed = [], False
    for name, (found, obj) in targets:
        if not as_json and len(targets) > 1:
            click.echo(f"== {found} {name}")
        # each line as its check ends (a crashing kernel leaves those before it); with
        # --json, what the plugin's code prints goes to stderr, not into the JSON
        with (plugins.command_output() if as_json else conformance.each_result(_echo_result)):
            results = _check(found, obj, seed)
        failed = [r for r in results if not r.passed]
        any_failed = any_failed or bool(failed)
        reports.append({"name": name, "kind": found, "passed": not failed,
                        "checks": [r._asdict() for r in results]})
        if not as_json:
            click.echo(f"{found} {name!r}: {len(results) - len(failed)}/{len(results)} "
                       f"checks passed")
    if as_json:
        click.echo(json.dumps(reports[0] if len(reports) == 1 and not check_all else reports,
                              indent=2))
    broken = plugins.broken_plugins() if check_all else {}
    if broken:  # what they provide never registered, so --all did not check it
        click.echo("not checked, broken plugins: "
                   + "; ".join(f"{name!r} ({error})" for name, error in sorted(broken.items()))
                   + " (see `recurrent plugins`)", err=True)
    if any_failed or broken:
        click.get_current_context().exit(1)


# the name column of `plugins check` lines: the longest of the kit's check names
CHECK_NAME_WIDTH = 50


def _echo_result(result) -> None:
    """One PASS/FAIL line of `plugins check`, flushed (click.echo flushes)."""
    click.echo(f"{'PASS' if result.passed else 'FAIL'}  {result.name.ljust(CHECK_NAME_WIDTH)}"
               f"  {result.detail}")


def _find(name: str, kind: str | None):
    """(kind, object) of the cell, loss or task ``name``; UserError naming what is known
    when there is none."""
    from . import conformance
    if kind in (None, "task") and name in plugins.entries("task"):
        others = [k for k in ("cell", "loss") if name in plugins.entries(k)]
        if kind is None and others:
            raise UserError(f"{name!r} is both a task and a {others[0]}; pass --kind")
        return "task", plugins.entries("task")[name].obj
    if kind == "task" or (kind is None and not any(name in plugins.entries(k)
                                                   for k in ("cell", "loss"))):
        kinds = ("task",) if kind else ("cell", "loss", "task")
        raise conformance.other_kind(name, kind) or conformance.unknown_name(name, kinds)
    return conformance.find(name, kind)


def _check(kind: str, obj, seed: int):
    """The conformance checks' results of a cell, loss or task."""
    from . import conformance
    if kind == "task":
        from .task_conformance import check_task
        return check_task(obj, seed)
    return (conformance.check_cell if kind == "cell" else conformance.check_loss)(obj, seed)


def _info() -> dict:
    import numpy
    import scipy
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS so threadpoolctl can see it)

    from . import __version__
    info = {"recurrent": __version__, "python": sys.version.split()[0],
            "numpy": numpy.__version__, "scipy": scipy.__version__}
    try:
        from . import threads
        info["openmp"] = bool(threads.openmp_enabled())
        info["default_threads"] = _default_threads(threads)
        from ._kernels import int8
        info["int8"] = int8.instruction_path()
        from .quant import bf16_available
        info["bf16"] = bf16_available()
    except ImportError as exc:  # kernels not built: say so rather than fail
        info["openmp"] = None
        info["default_threads"] = None
        info["kernels_error"] = one_line(exc)
    from .threads import blas_info
    info["blas"] = [{key: lib.get(key) for key in ("internal_api", "version", "architecture",
                                                    "num_threads", "threading_layer", "filepath")}
                    for lib in blas_info()]
    info["extras"] = {extra: extras.missing(extra) for extra in extras.FEATURES}
    info["mpi"] = _mpi_info()
    if "kernels_error" not in info:
        from . import tuning
        info["tuning"] = tuning.status()
    return info


def _mpi_info() -> dict:
    """Under mpiexec: the MPI library and which ranks run on which host (every rank takes
    part); otherwise whether the `mpi` extra is installed."""
    from . import distributed
    world = distributed.world()
    if world.size > 1:
        return world.describe()
    return {"size": 1, "installed": distributed.mpi_available()}


def _default_threads(threads) -> int | None:
    """The most threads a kernel uses when none is given (recurrent.threads decides; small
    batches get fewer so that they are never slower than one thread)."""
    if callable(getattr(threads, "max_threads", None)):
        from .tuning import default_threads
        return int(default_threads())
    if callable(getattr(threads, "resolve_threads", None)):
        return int(threads.resolve_threads(None, 1 << 16, 1 << 10))
    return None


@click.command("info", short_help="Show versions, OpenMP, threads and BLAS libraries.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def info_command(as_json):
    """Show versions, OpenMP, threads and the BLAS libraries in use."""
    from .distributed import world
    job = world()  # first: under mpiexec it sets this rank's default thread count
    info = _info()
    if not job.is_root:
        return  # rank 0 prints the job's info
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    openmp = {True: "on", False: "OFF (kernels built single-threaded)", None: "unknown"}
    click.echo(f"recurrent   {info['recurrent']} (python {info['python']})")
    click.echo(f"numpy       {info['numpy']}")
    click.echo(f"scipy       {info['scipy']}")
    click.echo(f"openmp      {openmp[info['openmp']]}")
    if info["default_threads"] is None:
        click.echo("threads     unknown")
    else:
        click.echo(f"threads     {info['default_threads']} by default (fewer for small batches; "
                   f"--threads N or RECURRENT_NUM_THREADS to choose)")
    if "kernels_error" in info:
        click.echo(f"kernels     not available: {info['kernels_error']}")
    if info.get("int8"):
        path = {"avx512_vnni": "AVX-512 VNNI vpdpbusd, exact int32 sums",
                "avx_vnni": "AVX-VNNI vpdpbusd (256-bit), exact int32 sums (no "
                            "AVX512_VNNI in use)",
                "avx2": "AVX2 vpmaddwd, exact int32 sums (no VNNI in use)",
                "portable": "portable C, exact int32 sums (no AVX2 in use)"}[info["int8"]]
        click.echo(f"int8        inference products: {path}")
    if "bf16" in info:
        click.echo("bf16        training and inference products: " + (
            "AVX512_BF16, bfloat16 operands with float32 sums" if info["bf16"] else
            "not on this CPU (no AVX512_BF16 in use): --precision bf16 runs fp32"))
    if not info["blas"]:
        click.echo("blas        none found by threadpoolctl")
    for lib in info["blas"]:
        # num_threads is the count outside recurrent: its commands and kernels run every
        # BLAS library on one thread (threads.single_threaded_blas)
        click.echo(f"blas        {lib['internal_api']} {lib['version']}, kernel "
                   f"{lib['architecture']}, run on 1 thread by recurrent "
                   f"({lib['num_threads']} otherwise, {lib['threading_layer']}): "
                   f"{lib['filepath']}")
    if "tuning" in info:
        for line in _tuning_lines(info["tuning"]):
            click.echo(line)
    for extra, missing in info["extras"].items():
        feature = extras.FEATURES[extra]
        if missing is None:
            state = f"unknown, recurrent runs uninstalled: {feature}"
        elif missing:
            state = f"not installed: {feature}; {extras.install_hint(extra)}"
        else:
            state = f"installed: {feature}"
        click.echo(f"{extra:<12}{state}")
    mpi = info["mpi"]
    if mpi["size"] > 1:
        layout = "; ".join(f"{host}: ranks {', '.join(map(str, ranks))}"
                           for host, ranks in mpi["hosts"].items())
        click.echo(f"mpi         {mpi['library']} (mpi4py {mpi['mpi4py']}), {mpi['size']} "
                   f"ranks on {len(mpi['hosts'])} host(s): {layout}")
    else:
        click.echo("mpi         " + ("mpi4py installed; run under mpiexec or with "
                                     "`train --ranks N` for data-parallel training"
                                     if mpi["installed"] else
                                     f"not installed: data-parallel training; "
                                     f"{extras.install_hint('mpi')}"))


# ---- kernel tuning -------------------------------------------------------------------

def _value_text(name, value):
    """A setting's value for people: sizes in KiB/MiB, the LSTM threshold's "never"."""
    if name == "lstm_in_tile_min_rows" and value >= 1 << 30:
        return "never"
    if name == "infer_chunk_bytes":
        return f"{value >> 20} MiB" if value % (1 << 20) == 0 else f"{value >> 10} KiB"
    return str(value)


def _tuning_lines(status) -> list[str]:
    """`recurrent info`'s lines on the kernel tuning: where the settings come from and,
    when tuned, what they are."""
    mode = status["mode"]
    if mode == "off":
        lines = [f"tuning      off ({status['note']}): the kernels' fixed defaults"]
    elif mode == "pending":
        note = f" ({status['note']})" if status.get("note") else ""
        lines = [f"tuning      no cache for this CPU and version yet{note}: the first kernel "
                 f"call tunes (a few seconds), or run `recurrent tune`; would be "
                 f"{status['path']}"]
    else:
        lines = [f"tuning      cache in use: {status['path']}"]
    if mode == "cache":
        chosen = ", ".join(
            f"{name}={_value_text(name, value)}"
            + ("" if value == status["defaults"][name]
               else f" (default {_value_text(name, status['defaults'][name])})")
            for name, value in status["settings"].items())
        lines.append(f"            {chosen}")
    return lines


@click.command("tune", short_help="Measure and cache the kernels' settings on this CPU.")
@click.option("--budget", type=float, default=None, metavar="SECONDS",
              help="About how long to measure [default: 20].")
@click.option("--threads", "num_threads", type=THREAD_COUNT, default=None,
              help="Threads to measure with: the count you will run [default: the "
                   "default thread count, see `recurrent info`].")
@click.option("--off", "turn_off", is_flag=True,
              help="Turn tuning off for this cache directory: the kernels' fixed defaults.")
@click.option("--on", "turn_on", is_flag=True, help="Turn tuning back on.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the result as JSON: the file written, the settings chosen, the "
                   "defaults and each decision.")
def tune_command(budget, num_threads, turn_off, turn_on, as_json):
    """Measure the kernels' block sizes and path choices on this CPU and cache the fastest.

    Runs in seconds; the result is stored per CPU and recurrent version and used by every
    later run (the first kernel call of a run does a quicker tune itself when there is no
    cache). RECURRENT_TUNE=off or `recurrent tune --off` keeps the fixed defaults."""
    from . import tuning
    if turn_on and turn_off:
        raise click.UsageError("--on and --off contradict each other: give one")
    switch = "on" if turn_on else "off" if turn_off else None
    if switch is not None:
        if budget is not None or num_threads is not None or as_json:
            raise click.UsageError("--on/--off take no --budget, --threads or --json")
        try:
            marker, changed = tuning.set_enabled(switch == "on")
        except (tuning.CacheError, OSError) as exc:
            raise UserError(f"tune --{switch}: {tuning.cache_failure(exc)}") from None
        already = "" if changed else "already "
        if switch == "off":
            click.echo(f"kernel tuning is {already}off: the fixed defaults are used "
                       f"({marker}); `recurrent tune --on` turns it back on")
        else:
            state = tuning.status()
            if state["mode"] == "off":  # RECURRENT_TUNE=off, or the cache turned off
                switch_gone = (f"the `recurrent tune --off` switch is removed ({marker})"
                               if changed else
                               f"there is no `recurrent tune --off` switch ({marker})")
                click.echo(f"{switch_gone}, but kernel tuning stays off: {state['note']}")
            else:
                click.echo(f"kernel tuning is {already}on: " + _tuning_lines(state)[0][12:])
        return
    budget = tuning.DEFAULT_BUDGET if budget is None else budget
    if not 0 < budget < math.inf:  # NaN and infinity too (the file is JSON)
        raise click.BadParameter(f"expected a positive number of seconds, got {budget}",
                                 param_hint="'--budget'")
    if tuning.cache_path() is None:  # nowhere to keep the result: one line, nothing measured
        from .cache import off_reason
        raise UserError(f"tune: {off_reason()}")
    # the file written is named in the last line printed: checked before measuring
    std_streams.check_printable("tune", tuning.cache_path())
    try:  # and written: a directory in its place would fail after the whole budget
        tuning.check_storable(tuning.cache_path())
    except OSError as exc:
        raise UserError(f"tune: {tuning.cache_failure(exc)}") from None
    threads = tuning.default_threads() if num_threads is None else num_threads
    click.echo(f"tuning the kernels with {threads} thread(s), budget {budget:g} s", err=True)
    start = time.monotonic()
    try:
        # a SIGTERM (`timeout`, a scheduler) stops the measuring as a Ctrl-C does
        # (cli.RecurrentGroup.main): "Aborted.", exit status 143, the cache file as it was
        settings, outcomes, path = tuning.tune_and_store(
            budget, threads, progress=lambda line: click.echo(line, err=True))
    except (tuning.CacheError, OSError, TimeoutError) as exc:
        raise UserError(f"tune: {tuning.cache_failure(exc)}") from None
    tuning.reset()
    seconds = time.monotonic() - start
    state = tuning.status()
    if as_json:
        from .checkpoint import json_text
        click.echo(json_text({
            "path": path, "threads": threads, "budget": budget,
            "seconds": round(seconds, 2),
            "settings": settings, "defaults": tuning.defaults(),
            "decisions": [o.__dict__ for o in outcomes],
            "in_use": state["mode"] != "off", "note": state.get("note")}, indent=2))
        return
    click.echo(f"{'setting':24s} {'default':>9s} {'chosen':>9s} {'vs default':>10s} "
               f"{'rounds':>6s}")
    for o in outcomes:
        gain = f"{o.speedup:.2f}x" if o.rounds else "skipped"
        click.echo(f"{o.name:24s} {_value_text(o.name, o.default):>9s} "
                   f"{_value_text(o.name, o.chosen):>9s} {gain:>10s} {o.rounds:>6d}")
    click.echo(f"wrote {path} ({seconds:.1f} s, {threads} thread(s))")
    if state["mode"] == "off":
        click.echo(f"note: tuning is off ({state['note']}), so runs use the fixed defaults")
