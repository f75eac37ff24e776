"""The whole plugin API of recurrent: four hooks, each handed a callback or the CLI group.

A plugin is any module or object with functions named like the hooks below, decorated with
``recurrent.hookimpl``. First-party cells, losses and tasks use exactly these hooks.
Plugins receive and return ints, numpy arrays and plain dicts; the object protocols they
implement (Cell, Loss, Task), with their required and optional members, are stated in
recurrent/protocols.py.
"""
import pluggy

hookspec = pluggy.HookspecMarker("recurrent")
hookimpl = pluggy.HookimplMarker("recurrent")


@hookspec
def register_cells(register):
    """Register recurrent cells: call ``register(cell)`` once per cell object
    (recurrent.protocols.Cell)."""


@hookspec
def register_losses(register):
    """Register losses: call ``register(loss)`` once per loss object (recurrent.protocols.Loss)."""


@hookspec
def register_tasks(register):
    """Register tasks: call ``register(task)`` once per task object (recurrent.protocols.Task)."""


@hookspec
def register_commands(cli):
    """Add click commands to the ``recurrent`` CLI group: ``@cli.command()`` etc."""
