"""`recurrent plugins`, `recurrent plugins check NAME` and `recurrent info`.

Click objects only: recurrent/cli.py adds them to the root group with ``cli.add_command``.
Errors are click exceptions (one line on stderr, exit status 1 or 2), so the commands behave
the same under any root group.
"""
from __future__ import annotations

import json
import sys

import click

from . import plugins
from .checks import one_line
from .errors import UserError

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


def _summary(entry) -> str:
    if entry.kind == "command":
        return entry.obj.get_short_help_str(limit=60)
    if entry.kind == "task":
        return _shorten(str(getattr(entry.obj, "help", "")))
    doc = (type(entry.obj).__doc__ or "").strip().splitlines()
    return _shorten(doc[0]) if doc else ""


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def _core_commands(ctx: click.Context, from_plugins: set) -> list[dict]:
    """Commands of the root group that no plugin added (train, eval, plugins, ...)."""
    from . import __version__
    root = ctx.find_root().command
    if not isinstance(root, click.Group) or root is ctx.command:
        return []
    return [{"name": name, "plugin": CORE, "version": __version__,
             "help": cmd.get_short_help_str(limit=60)}
            for name, cmd in root.commands.items() if name not in from_plugins]


def _table(rows: list[dict], columns: list[str]) -> str:
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(str(r[c]).ljust(w) for c, w in zip(columns, widths)).rstrip()
              for r in rows]
    return "\n".join(lines)


@click.group("plugins", invoke_without_command=True)
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
        click.echo(_indent(_table(rows, ["name", "plugin", "version", "help"])) if rows
                   else "  (none)")
        click.echo()
    if listing["broken"]:
        click.echo("Broken plugins:")
        click.echo(_indent(_table(listing["broken"], ["plugin", "error"])))



def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


@plugins_group.command("check")
@click.argument("names", metavar="NAME...", nargs=-1)
@click.option("--all", "check_all", is_flag=True,
              help="Check every registered cell and loss.")
@click.option("--kind", type=click.Choice(["cell", "loss"]), default=None,
              help="Check the cell or the loss of this name (needed only if both exist).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the random inputs and parameters.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def check_command(names, check_all, kind, seed, as_json):
    """Run the conformance kit on the cells or losses NAME... (or --all).

    Cells: float64 finite-difference gradients for x, states and every parameter; shapes;
    sequence vs step; lengths (padding invariance, zero outputs and ignored gradients past
    a row's length); float32; threads. Losses: gradients, masks, means. Prints PASS/FAIL per
    check and exits 1 if any check fails.
    """
    from . import conformance
    if check_all:
        if names:
            raise click.UsageError("give NAME... or --all, not both")
        targets = [(n, k) for k in ("cell", "loss") if kind in (None, k)
                   for n in sorted(plugins.entries(k))]
    elif names:
        targets = [(n, kind) for n in names]
    else:
        raise click.UsageError("give the NAME of a cell or loss to check, or --all")
    reports, any_failed = [], False
    for name, wanted in targets:
        try:
            found, results = conformance.check(name, wanted, seed)
        except UserError as exc:
            raise click.BadParameter(str(exc), param_hint="'NAME'") from None
        failed = [r for r in results if not r.passed]
        any_failed = any_failed or bool(failed)
        reports.append({"name": name, "kind": found, "passed": not failed,
                        "checks": [r._asdict() for r in results]})
        if not as_json:
            if len(targets) > 1:
                click.echo(f"== {found} {name}")
            width = max(len(r.name) for r in results)
            for r in results:
                click.echo(f"{'PASS' if r.passed else 'FAIL'}  {r.name.ljust(width)}  {r.detail}")
            click.echo(f"{found} {name!r}: {len(results) - len(failed)}/{len(results)} "
                       f"checks passed")
    if as_json:
        click.echo(json.dumps(reports[0] if len(reports) == 1 and not check_all else reports,
                              indent=2))
    if any_failed:
        click.get_current_context().exit(1)


def _info() -> dict:
    import numpy
    import scipy
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS so threadpoolctl can see it)
    import threadpoolctl

    from . import __version__
    info = {"recurrent": __version__, "python": sys.version.split()[0],
            "numpy": numpy.__version__, "scipy": scipy.__version__}
    try:
        from . import threads
        info["openmp"] = bool(threads.openmp_enabled())
        info["default_threads"] = _default_threads(threads)
        from ._kernels import int8
        info["int8"] = int8.instruction_path()
    except ImportError as exc:  # kernels not built: say so rather than fail
        info["openmp"] = None
        info["default_threads"] = None
        info["kernels_error"] = one_line(exc)
    info["blas"] = [{key: lib.get(key) for key in ("internal_api", "version", "architecture",
                                                    "num_threads", "threading_layer", "filepath")}
                    for lib in threadpoolctl.threadpool_info() if lib.get("user_api") == "blas"]
    info["mpi"] = _mpi_info()
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
        return int(threads.max_threads())
    if callable(getattr(threads, "resolve_threads", None)):
        return int(threads.resolve_threads(None, 1 << 16, 1 << 10))
    return None


@click.command("info")
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
        path = {"avx2": "AVX2 vpmaddwd, exact int32 sums (no VNNI variant)",
                "portable": "portable C (no AVX2 on this CPU)"}[info["int8"]]
        click.echo(f"int8        inference products: {path}")
    if not info["blas"]:
        click.echo("blas        none found by threadpoolctl")
    for lib in info["blas"]:
        click.echo(f"blas        {lib['internal_api']} {lib['version']}, kernel "
                   f"{lib['architecture']}, {lib['num_threads']} threads "
                   f"({lib['threading_layer']}): {lib['filepath']}")
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
                                     "not installed (pip install 'recurrent[mpi]' for "
                                     "data-parallel training)"))
