"""Plugin manager and the registries of cells, losses and tasks.

Built-ins are ordinary plugins (DEFAULT_PLUGINS) registered through the hooks in
recurrent/hookspecs.py, exactly as a third-party package would through the "recurrent"
entry-point group.
"""
import importlib

import pluggy

from . import hookspecs
from .errors import UserError

DEFAULT_PLUGINS = (
    "recurrent_plugins.cells",
)

pm = pluggy.PluginManager("recurrent")
pm.add_hookspecs(hookspecs)
_loaded = False


def load_plugins():
    """Register the built-in plugins once (idempotent)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module_name in DEFAULT_PLUGINS:
        module = importlib.import_module(module_name)
        if not pm.is_registered(module):
            pm.register(module, name=module_name)
    pm.check_pending()


def _collect(hook):
    load_plugins()
    found = {}

    def register(obj):
        if obj.name in found:
            raise UserError(f"two plugins register the name {obj.name!r}")
        found[obj.name] = obj

    hook(register=register)
    return found


def cells():
    """All registered cells by name."""
    return _collect(pm.hook.register_cells)


def get_cell(name):
    """The cell registered under ``name``; an unknown name lists the known ones."""
    known = cells()
    if name not in known:
        raise UserError(f"unknown cell {name!r}; known cells: {', '.join(sorted(known))}")
    return known[name]
