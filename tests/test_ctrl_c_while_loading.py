"""A Ctrl-C in the first second of any command -- while the command line imports its modules
and loads the plugins (recurrent/cli.py: plugins.register_commands at import) -- printed a
KeyboardInterrupt traceback and died by the signal, instead of "Aborted." and status 130 as
a Ctrl-C during the command. Simulated deterministically: the plugin loading raises
KeyboardInterrupt, as the default SIGINT handler does at that moment."""
import subprocess
import sys

from helpers import installed_env

SCRIPT = """
import runpy, sys
import recurrent.plugins as plugins
def interrupted(**kw):
    raise KeyboardInterrupt
plugins.register_commands = interrupted
sys.argv = ["recurrent"] + sys.argv[1:]
runpy.run_module("recurrent", run_name="__main__")
"""


def _run(*args, **env):
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True,
                          text=True, env=installed_env(**env), timeout=120)


def test_ctrl_c_while_the_plugins_load_is_aborted_in_one_line():
    result = _run("info")
    assert result.returncode == 130, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip() == "Aborted."


def test_with_debug_the_traceback_is_shown():
    result = _run("--debug", "info")
    assert "KeyboardInterrupt" in result.stderr and "Traceback" in result.stderr
