"""The `recurrent` console script (and `python -m recurrent`). Loading the command line (its
modules, numpy, and every plugin's) takes a while; a Ctrl-C in that time ends the
command as a Ctrl-C during it does ("Aborted.", exit status 130), not with a Python
traceback (that only with --debug or RECURRENT_DEBUG, as for any error); a rank of an MPI
job (train, info) tells the ranks waiting for it in distributed.world(), which stop too.
Imports nothing heavy, so that it is in place before the loading starts."""
from __future__ import annotations

import sys

from .env_flags import env_flag


def main(argv=None):
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        args = list(sys.argv[1:] if argv is None else argv)
        if debug_asked(args):
            raise
        # A rank of an MPI job tells the ranks already waiting for it in world() (they
        # stop too, rank 0 printing the line once) rather than leaving them waiting.
        # distributed imports numpy, which the Ctrl-C may have stopped while its
        # compiled core was being set up: importing it again then fails (ImportError:
        # cannot load module more than once), and without it no rank can be told, so
        # the line is printed here.
        try:
            from .distributed import joins_world, report_early_failure
        except ImportError:
            tell = True
        else:
            tell = report_early_failure("Aborted.", joins_world(args))
        if tell:
            print("Aborted.", file=sys.stderr)
        sys.exit(130)
    if _process_entry(sys._getframe(1)):  # a signal as it shuts down changes nothing
        from .interrupt import ending_with_command
        ending_with_command()
    return cli_main(argv)  # it exits with the command's status (sys.exit)


def _process_entry(caller) -> bool:
    """Whether main() was called (``caller``: the calling frame) as the process's own
    program, which ends with it: by the console script's module code (the outermost
    frame) or by `python -m recurrent` (runpy's _run_module_as_main, outermost). Not
    when a program runs recurrent inside itself (runpy.run_module, IPython's `%run -m`,
    recurrent.cli.main from a function): that program goes on afterwards, with its
    signal handlers."""
    outer = caller
    while outer.f_back is not None:
        outer = outer.f_back
    return outer is caller or (outer.f_code.co_name == "_run_module_as_main"
                               and outer.f_globals.get("__name__") == "runpy")


def debug_asked(args) -> bool:
    """--debug given to the root command, before the subcommand (after it, it is that
    command's unknown option, or a value such as a text to classify), or RECURRENT_DEBUG
    set to anything but "", 0, false, no or off. The root's options take no values, so
    the subcommand is its first argument that is not an option."""
    root = next((args[:i] for i, a in enumerate(args) if not str(a).startswith("-")), args)
    return "--debug" in root or env_flag("RECURRENT_DEBUG")

