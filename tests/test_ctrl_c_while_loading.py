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


# The command line loading with a Ctrl-C (a KeyboardInterrupt, as the default SIGINT handler
# raises) arriving inside the import of the module given first: one that numpy's compiled
# core imports while it is set up, which then cannot be imported again in this process.
INTERRUPTED_IMPORT = """
import runpy, sys
target = sys.argv.pop(1)

class Interrupting:
    fired = False

    def find_spec(self, name, path=None, target_path=None):
        if name == target and not Interrupting.fired:
            Interrupting.fired = True
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupting())
sys.argv = ["recurrent"] + sys.argv[1:]
runpy.run_module("recurrent", run_name="__main__")
"""


def test_ctrl_c_while_numpy_sets_up_its_core_is_aborted_in_one_line():
    import numpy
    core = "numpy._core" if hasattr(numpy, "_core") else "numpy.core"
    result = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT,
                             f"{core}._exceptions", "info"], capture_output=True, text=True,
                            env=installed_env(), timeout=120)
    assert result.returncode == 130, (result.returncode, result.stderr)
    assert result.stderr.strip() == "Aborted.", result.stderr
