"""Plugin manager and the registries of cells, losses, tasks and commands.

Built-ins are ordinary plugins (DEFAULT_PLUGINS) registered through the hooks in
recurrent/hookspecs.py, exactly as a third-party package would through the "recurrent"
entry-point group.

How a registry is built: every registered plugin's hooks are called separately, in
registration order (built-ins first), each into its own staging list. A plugin whose hook
raises, which registers a malformed object (such as a task whose options() take a
shared training option's flag or config key), or which claims a name another plugin already
holds is recorded as *broken* (name + one-line error), unregistered, and contributes nothing;
everything else keeps working. Plugins that fail to import are recorded the same way, and
so is an entry point whose module has no hook implementations (it would register nothing).
What a plugin prints while it is imported or its hooks run goes to stderr, so that stdout
holds only what the command prints.

The result is cached and rebuilt only when the set of registered plugins changes, so
``get_cell(name)`` in a hot path costs a dict lookup and a short list comparison.

Environment:
  RECURRENT_NO_ENTRYPOINTS=1   do not load third-party plugins (the test suite sets this)
  RECURRENT_PLUGINS=a,b        load only the entry points named a and b
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import numbers
import os
import re
import sys
import types
import weakref
from dataclasses import dataclass
from typing import Any

import pluggy

from . import hookspecs
from .env_flags import env_flag
from .checks import one_line
from .errors import UserError, error_line
from .masks import takes_masks
from .protocols import TARGET_KINDS, Cell, Loss, Task, missing_members

ENTRY_POINT_GROUP = "recurrent"

DEFAULT_PLUGINS = (
    "recurrent_plugins.cells",
    "recurrent_plugins.losses",
    "recurrent_plugins.sentiment",
    "recurrent_plugins.char_lm",
    "recurrent_plugins.forecast",
    "recurrent_plugins.seq2seq",
    "recurrent_plugins.bench",
)

# kind -> (hook name, the protocol of recurrent.protocols a registered object follows;
# commands are click commands, with no protocol of their own)
KINDS = {
    "cell": ("register_cells", Cell),
    "loss": ("register_losses", Loss),
    "task": ("register_tasks", Task),
    "command": ("register_commands", None),
}
PLURAL = {"cell": "cells", "loss": "losses", "task": "tasks", "command": "commands"}


@dataclass(frozen=True)
class Entry:
    """One registered object and where it came from."""
    kind: str  # "cell" | "loss" | "task" | "command"
    name: str
    obj: Any
    plugin: str  # plugin name: module name for built-ins, entry-point name otherwise
    version: str  # version of the distribution providing the plugin


def _core_version() -> str:
    from . import __version__
    return __version__


# The names of cells, losses and tasks: typed as option values and arguments (`--cell
# NAME`, `recurrent train NAME`), listed with commas (`bench --cell a,b`) and part of a
# run directory's default path (runs/TASK-DATE-TIME), so no blank, comma, slash or
# leading dash: letters (any script), digits, "_", "-" and ".".
OBJECT_NAME = re.compile(r"[^\W_][\w.-]*")


class Registry:
    """A pluggy PluginManager plus the cached registries built from its plugins.

    The module keeps one instance (``_registry``, over ``pm``); tests may build their own
    to load entry points in isolation.
    """

    def __init__(self, manager: pluggy.PluginManager | None = None,
                 default_plugins: tuple[str, ...] = DEFAULT_PLUGINS):
        if manager is None:
            manager = pluggy.PluginManager("recurrent")
            manager.add_hookspecs(hookspecs)
        self.pm = manager
        self.default_plugins = default_plugins
        self.broken: dict[str, str] = {}  # plugin name -> one-line error
        self.versions: dict[str, str] = {}  # plugin name -> version
        self.distributions: dict[str, str] = {}  # entry-point plugin name -> distribution
        self._loaded = False
        self._cache_key: list | None = None
        self._entries: dict[str, dict[str, Entry]] = {}
        # CLI group -> names of the plugins whose commands were added to it
        self._commands_added: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    # ---- loading -------------------------------------------------------------------------

    def load(self) -> None:
        """Register the built-in plugins and the entry points, once (idempotent)."""
        if self._loaded:
            return
        self._loaded = True
        for module_name in self.default_plugins:
            try:
                module = importlib.import_module(module_name)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a broken built-in must not take the CLI down either
                self.broken[module_name] = _import_error_line(exc)
                continue
            self._add(module, module_name, _core_version())
        if not env_flag("RECURRENT_NO_ENTRYPOINTS"):
            self._load_entry_points()
        self._check_pending()

    def _load_entry_points(self) -> None:
        allowed = os.environ.get("RECURRENT_PLUGINS", "").strip()
        allow = {n.strip() for n in allowed.split(",") if n.strip()} if allowed else None
        providers: dict[str, str] = {}  # entry-point name -> the distribution loading it
        declared = set()
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            declared.add(ep.name)
            if allow is not None and ep.name not in allow:
                continue
            dist = _dist_name(ep)
            if ep.name in providers or self.pm.has_plugin(ep.name) or ep.name in self.broken:
                other = providers.get(ep.name)
                if other is not None and other != dist:
                    # two distributions claim one plugin name: the first found loads; the
                    # other is listed as broken (under a name of its own) instead of vanishing
                    self.broken[f"{ep.name} ({dist})"] = (
                        f"entry point name {ep.name!r} is already taken by distribution "
                        f"{other!r}; this distribution's plugin is not loaded")
                continue  # otherwise the same distribution seen twice on sys.path
            providers[ep.name] = dist
            self.distributions[ep.name] = dist
            version = ep.dist.version if ep.dist is not None else "?"
            try:
                with _plugin_output():
                    plugin = ep.load()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # SystemExit too: a script-style module (argparse)
                self.broken[ep.name] = _import_error_line(exc)
                continue
            if self._add(plugin, ep.name, version) and not self.pm.get_hookcallers(plugin):
                # the entry point names a module without hooks (the task's own module,
                # say, instead of the one registering it), or a hook function itself
                # rather than its module: it would add nothing, unseen
                self.unregister_plugin(ep.name)
                if isinstance(plugin, types.FunctionType) and ep.attr:
                    self.broken[ep.name] = (
                        f"entry point {ep.value!r} registers nothing: it names the "
                        f"function {ep.attr}, not the module holding the hooks: declare "
                        f"{ep.name} = \"{ep.module}\"")
                    continue
                self.broken[ep.name] = (
                    f"entry point {ep.value!r} registers nothing: it has no "
                    f"@recurrent.hookimpl function ({', '.join(h for h, _ in KINDS.values())})")
        for name in sorted((allow or set()) - declared):  # a typo would load nothing silently
            self.broken[name] = (f"named in RECURRENT_PLUGINS, but no installed distribution "
                                 f"declares it (declared: {', '.join(sorted(declared)) or 'none'})")

    def _add(self, plugin: Any, name: str, version: str) -> bool:
        """pm.register with failures recorded instead of raised; True on success."""
        try:
            forgotten = _undecorated_hooks(plugin, self.pm)
            if forgotten:
                raise pluggy.PluginValidationError(
                    plugin, f"{', '.join(forgotten)} lacks the @recurrent.hookimpl decorator")
            self.pm.register(plugin, name=name)
        except Exception as exc:
            self.broken[name] = _plugin_error_line(exc)
            return False
        self.broken.pop(name, None)
        self.versions[name] = version
        for added in self._commands_added.values():  # a plugin new under this name
            added.discard(name)
        return True

    def _check_pending(self) -> None:
        """pm.check_pending() until clean: each plugin with a misspelled hook is unregistered
        and recorded as broken, instead of the first one stopping everything."""
        while True:
            try:
                self.pm.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                name = self.pm.get_name(exc.plugin) or repr(exc.plugin)
                self.broken[name] = _unknown_hook_message(exc.plugin, self.pm)
                self.pm.unregister(exc.plugin)

    def register_plugin(self, plugin: Any, name: str, version: str | None = None) -> None:
        """Register a plugin object/module programmatically (tests, notebooks).

        Raises UserError if it is invalid (bad hook names, name taken); its objects are
        validated when the registries are next built (see broken_plugins())."""
        self.load()
        if self.pm.has_plugin(name):
            raise UserError(f"a plugin named {name!r} is already registered")
        if version is None:
            version = str(getattr(plugin, "__version__", "-"))
        if not self._add(plugin, name, version):
            raise UserError(f"plugin {name!r} cannot be registered: {self.broken.pop(name)}")
        if _unknown_hooks(plugin, self.pm):
            message = _unknown_hook_message(plugin, self.pm)
            self.unregister_plugin(name)
            raise UserError(f"plugin {name!r} cannot be registered: {message}")

    def unregister_plugin(self, name: str) -> None:
        """Remove a plugin registered under ``name`` (no error if it is not there)."""
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        self.broken.pop(name, None)
        self.versions.pop(name, None)
        self.distributions.pop(name, None)

    # ---- registries ----------------------------------------------------------------------

    def entries(self, kind: str) -> dict[str, Entry]:
        """name -> Entry for one kind ("cell", "loss", "task", "command")."""
        self.load()
        key = self.pm.list_name_plugin()
        if key != self._cache_key:
            self._rebuild()
            # broken plugins were unregistered during the rebuild: key on what remains
            self._cache_key = self.pm.list_name_plugin()
        return self._entries[kind]

    def _rebuild(self) -> None:
        accepted: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:  # blocked name
                continue
            try:
                staged = self._stage(name, plugin, accepted)
            except Exception as exc:
                self.broken[name] = error_line(exc)
                self.pm.unregister(plugin)
                continue
            for entry in staged:
                accepted[entry.kind][entry.name] = entry
        self._entries = accepted

    def _stage(self, name: str, plugin: Any, accepted: dict) -> list[Entry]:
        """Run one plugin's hooks; return its entries or raise on any problem."""
        version = self.versions.get(name, "-")
        staged: list[Entry] = []
        seen: set[tuple[str, str]] = set()

        def add(kind: str, obj_name: Any, obj: Any) -> None:
            if not isinstance(obj_name, str) or not obj_name:
                raise ValueError(f"registered a {kind} without a string name: {obj!r}")
            if kind != "command" and not OBJECT_NAME.fullmatch(obj_name):
                raise ValueError(f"{kind} name {obj_name!r} is not one to type: use "
                                 f"letters, digits, '_', '-' and '.', beginning with a "
                                 f"letter or digit")
            if isinstance(obj, type) and kind != "command":
                # a class has the members as attributes, but its methods are unbound
                raise ValueError(f"{kind} {obj_name!r}: registered the class "
                                 f"{obj.__name__}, not an instance: call "
                                 f"register({obj.__name__}())")
            protocol = KINDS[kind][1]
            missing = missing_members(obj, protocol) if protocol is not None else []
            if missing:
                raise ValueError(f"{kind} {obj_name!r} lacks {', '.join(missing)}")
            if kind == "task":
                _check_task_members(obj_name, obj)
                _check_task_options(obj_name, obj)
            if kind == "cell":
                _check_cell_members(obj_name, obj)
            if kind == "loss":
                _check_loss_members(obj_name, obj)
            other = accepted[kind].get(obj_name)
            if other is not None:
                raise ValueError(f"{kind} name {obj_name!r} is already taken by "
                                 f"plugin {other.plugin!r}")
            if (kind, obj_name) in seen:
                raise ValueError(f"registers the {kind} name {obj_name!r} twice")
            seen.add((kind, obj_name))
            staged.append(Entry(kind, obj_name, obj, name, version))

        for kind, (hook_name, _) in KINDS.items():
            for impl in _impls_of(self.pm, hook_name, plugin):
                if impl.wrapper or impl.hookwrapper:
                    raise ValueError(f"{hook_name} cannot be a hook wrapper: register objects "
                                     f"by calling the callback")
                if kind == "command":
                    # Run against a scratch group to learn which commands the plugin adds.
                    import click
                    group = click.Group("recurrent")
                    with _plugin_output():
                        _call(impl, cli=group)
                    for cmd_name, cmd in group.commands.items():
                        add("command", cmd_name, cmd)
                else:
                    with _plugin_output():
                        result = _call(impl, register=_register_callback(kind, hook_name, add))
                    if result is not None:  # pluggy would drop it: nothing registered
                        raise ValueError(f"{hook_name} returned {type(result).__name__}: "
                                         f"call register(obj) once per object instead")
        return staged

    def get(self, kind: str, name: str) -> Any:
        """The object registered under ``name``; an unknown name lists the known ones."""
        known = self.entries(kind)
        entry = known.get(name)
        if entry is None:
            message = (f"unknown {kind} {name!r}; known {PLURAL[kind]}: "
                       f"{', '.join(sorted(known)) or '(none)'}")
            # a broken plugin whose error names this object is the one to fix or uninstall
            named = sorted(p for p, error in self.broken.items() if repr(name) in error)
            if named:
                message = (f"{kind} {name!r} is unavailable: "
                           + "; ".join(f"plugin {p!r} is broken: {self.broken[p]}"
                                       for p in named)
                           + f" (see `recurrent plugins`); known {PLURAL[kind]}: "
                             f"{', '.join(sorted(known)) or '(none)'}")
            elif self.broken:
                message += f" (broken plugins: {', '.join(sorted(self.broken))}; see `recurrent plugins`)"
            raise UserError(message + _entry_points_off())
        return entry.obj

    def provided(self, names: dict[str, str]) -> dict[str, dict]:
        """{kind: {"name", "plugin", "distribution", "version"}} for each of ``names``
        ({kind: name}) that an installed distribution's plugin provides, and {kind:
        {"name", "plugin", "module", "version"}} for one that a plugin registered
        in-process provides (register_plugin: "module" that plugin's module); never
        recurrent's own plugins. What a run keeps so that opening it where that plugin is
        missing names what to install, or what to register."""
        provided = {}
        for kind, name in names.items():
            entry = self.entries(kind).get(name)
            if entry is None or entry.plugin in self.default_plugins:
                continue
            if entry.plugin in self.distributions:
                where = {"distribution": self.distributions[entry.plugin]}
            else:
                where = {"module": _module_name(self.pm.get_plugin(entry.plugin))}
            provided[kind] = {"name": name, "plugin": entry.plugin, **where,
                              "version": entry.version}
        return provided

    def check_provided(self, provided: Any, what: str) -> None:
        """UserError in one line when a cell, loss or task ``provided`` records (from
        provided(), as a run saved it) is not registered here: the plugin and the
        distribution to install, or the broken plugin's error. ``what`` names the run."""
        if not isinstance(provided, dict):
            return
        for kind in ("task", "cell", "loss"):
            record = provided.get(kind)
            if not isinstance(record, dict):
                continue
            name, plugin = record.get("name"), record.get("plugin")
            if not isinstance(name, str) or name in self.entries(kind):
                continue
            dist, version = record.get("distribution"), record.get("version")
            module = record.get("module") if dist is None else None
            needs = (f"{what} needs {kind} {name!r} of plugin {plugin!r} "
                     + (f"({dist} {version})" if module is None else
                        f"(registered in-process from module {module!r})"))
            if plugin in self.broken:
                raise UserError(f"{needs}, which is broken: {self.broken[plugin]} (see "
                                f"`recurrent plugins`)")
            if any(repr(name) in error for error in self.broken.values()):
                self.get(kind, name)  # the message naming the broken plugin that has it
            if module is not None:  # no distribution to install: the process registers it
                raise UserError(f"{needs}, which this process has not registered: open "
                                f"the run where {module!r} is registered "
                                f"(recurrent.plugins.register_plugin), or install it as a "
                                f"plugin distribution")
            if _entry_points_off():
                raise UserError(f"{needs}, which is not loaded{_entry_points_off()}")
            here = (f"installed, but has no {kind} of that name" if plugin in self.versions
                    else "not installed")
            raise UserError(f"{needs}, which is {here}: install {dist} {version} again "
                            f"(`pip install '{dist}=={version}'`, or from where you got it)")

    def plugin_in_traceback(self, exc: BaseException) -> tuple[str, str] | None:
        """(name, version) of the plugin, other than the built-ins, whose code holds the
        innermost frame of ``exc``'s traceback that is any such plugin's; None when no
        such plugin's code is in it. A frame belongs to the plugin whose module is the
        frame's module or the package holding it (the deepest such module, as one package
        may declare an entry point per module); failing that, to a plugin whose module is
        in the frame's top-level package (never recurrent's own packages), the one already
        found in an outer frame when it is one of them (a helper the package's plugins
        share, called from that plugin's code)."""
        own = {__name__.split(".")[0], *(m.split(".")[0] for m in self.default_plugins)}
        modules = {}  # plugin module -> plugin name
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None or name in self.default_plugins:
                continue
            module = _module_name(plugin)
            if module.split(".")[0] not in own:
                modules.setdefault(module, name)
        found = None
        tb = exc.__traceback__
        while tb is not None:
            frame = str(tb.tb_frame.f_globals.get("__name__", ""))
            holders = [m for m in modules if frame == m or frame.startswith(m + ".")]
            if holders:
                found = modules[max(holders, key=len)]
            else:
                top = frame.split(".")[0]
                same = [n for m, n in modules.items() if m.split(".")[0] == top]
                if same and found not in same:
                    found = same[0]
            tb = tb.tb_next
        return None if found is None else (found, self.versions.get(found, "-"))

    def register_commands(self, cli: Any) -> None:
        """Let every working plugin add its commands to the real CLI group, once: called
        again (plugins registered since), only the plugins not yet asked add theirs, so a
        plugin's own commands are never taken for a clash with themselves.

        Each plugin's hook runs on its own: one that raises, or adds a command whose name is
        taken (e.g. "train"), is recorded as broken, its additions are undone, and the CLI
        keeps working."""
        for kind in KINDS:  # make sure broken plugins are found and removed first
            self.entries(kind)
        added = self._commands_added.setdefault(cli, set())
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None or name in added:
                continue
            added.add(name)
            for impl in _impls_of(self.pm, "register_commands", plugin):
                before = dict(cli.commands)
                try:
                    with _plugin_output():
                        _call(impl, cli=cli)
                    clashes = [c for c in cli.commands if c in before and cli.commands[c] is not before[c]]
                    if clashes:
                        raise ValueError(f"command name {', '.join(clashes)} is already taken")
                except Exception as exc:
                    cli.commands.clear()
                    cli.commands.update(before)
                    self.broken[name] = error_line(exc)
                    self.pm.unregister(plugin)
                    break


def _module_name(plugin: Any) -> str:
    """The module a plugin is, or whose class it is an instance of."""
    return (plugin.__name__ if isinstance(plugin, types.ModuleType)
            else type(plugin).__module__)


def _entry_points_off() -> str:
    """The note an unknown name gets while the environment keeps installed plugins from
    loading (RECURRENT_NO_ENTRYPOINTS, RECURRENT_PLUGINS), or ""."""
    if env_flag("RECURRENT_NO_ENTRYPOINTS"):
        return " (RECURRENT_NO_ENTRYPOINTS is set: installed plugins are not loaded)"
    if os.environ.get("RECURRENT_PLUGINS", "").strip():
        return " (RECURRENT_PLUGINS is set: only the plugins it names are loaded)"
    return ""


def _plugin_output():
    """A context in which a plugin's prints (at import, in its hooks) go to stderr: stdout
    carries what commands print for programs (`--json`, `predict --stream`'s JSON lines),
    which a stray line would make unreadable."""
    return contextlib.redirect_stdout(sys.stderr)


@contextlib.contextmanager
def command_output():
    """For a command that runs plugin code (a task's evaluate or predict, a cell's forward)
    and prints for programs: within, sys.stdout is stderr (_plugin_output), so what the
    plugin code prints goes there; yields the echo (click.echo's arguments) the command
    prints its own output with, to the real stdout. That echo is click.echo with the real
    stdout put back for the call, so click treats it as any command's output: UTF-8 where
    its encoding is ASCII, nothing when there is no stdout (``>&-``)."""
    import click
    out = sys.stdout

    def echo(*args, **kwargs):
        with contextlib.redirect_stdout(out):
            click.echo(*args, **kwargs)

    with _plugin_output():
        yield echo


def _register_callback(kind: str, hook_name: str, add) -> Any:
    """The ``register`` a hook of ``kind`` is handed: one object per call."""
    def register(*objs):
        if len(objs) != 1:
            raise ValueError(f"{hook_name}: register() takes one object per call, "
                             f"got {len(objs)}")
        add(kind, getattr(objs[0], "name", None), objs[0])
    return register


# the positional arguments layers pass each method of a cell (recurrent.protocols.Cell)
_CELL_CALLS = {"forward": "x, states, params, lengths, num_threads",
               "infer": "x, states, params, lengths, num_threads",
               "backward": "d_out, d_final_states, cache, grads, num_threads"}


def _check_cell_members(name: str, cell: Any) -> None:
    """ValueError naming the cell when a member contradicts the protocol or the others
    (recurrent.protocols.Cell): a forward(), infer() or backward() that cannot take the
    five positional arguments layers pass it, a gate_order without one letter per gate
    block (the layer would set --forget-bias on rows the cell does not have, i.e. on
    none),
    mask_kinds listed by a cell whose forward() or infer() takes no ``masks`` keyword
    (the layer passes it whenever a mask option is on), or precisions that are not
    among quant.TRAINING_PRECISIONS, or that list bf16 for a cell whose forward(),
    infer() or backward() takes no ``precision`` keyword (the layer passes it in bf16)."""
    import inspect
    gates = cell.num_gates
    if not isinstance(gates, numbers.Integral) or isinstance(gates, bool) or gates < 1:
        raise ValueError(f"cell {name!r}: num_gates {gates!r} is not a positive whole "
                         f"number (the gate blocks stacked in weight_ih)")
    states = cell.state_names
    if (not isinstance(states, (tuple, list)) or not states or states[0] != "h"
            or not all(isinstance(s, str) and s.isidentifier() for s in states)
            or len(set(states)) != len(states)):
        raise ValueError(f"cell {name!r}: state_names {states!r} is not a tuple of distinct "
                         f"names starting with 'h' (the output state), such as ('h',) or "
                         f"('h', 'c')")
    order = getattr(cell, "gate_order", None)
    if order is not None:
        if (not isinstance(order, (tuple, list)) or len(order) != cell.num_gates
                or not all(isinstance(g, str) and len(g) == 1 for g in order)):
            raise ValueError(f"cell {name!r}: gate_order {order!r} does not give one letter "
                             f"per gate block (num_gates {cell.num_gates!r})")
    for method in ("forward", "infer", "backward"):
        # layers call each with five positional arguments (recurrent.protocols.Cell); a
        # method taking another number would fail only inside training, as a TypeError
        # raised in recurrent's code rather than the plugin's
        function = getattr(cell, method, None)
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):  # absent, or a compiled function without one
            continue
        try:
            signature.bind(*range(5))
        except TypeError:
            raise ValueError(f"cell {name!r}: {method}{signature} cannot take the five "
                             f"arguments layers pass it ({_CELL_CALLS[method]}: "
                             f"recurrent.protocols.Cell)") from None
    _check_cell_precisions(name, cell)
    if not getattr(cell, "mask_kinds", None):
        return
    for method in ("forward", "infer"):
        function = getattr(cell, method, None)
        if function is not None and not takes_masks(function):
            raise ValueError(f"cell {name!r} lists mask_kinds {tuple(cell.mask_kinds)!r}, "
                             f"but its {method}() takes no masks keyword")


def _check_cell_precisions(name: str, cell: Any) -> None:
    """_check_cell_members' part on the optional ``precisions`` member."""
    import inspect

    from .quant import TRAINING_PRECISIONS
    precisions = getattr(cell, "precisions", None)
    if precisions is None:
        return
    if (not isinstance(precisions, (tuple, list))
            or not all(isinstance(p, str) and p in TRAINING_PRECISIONS for p in precisions)):
        raise ValueError(f"cell {name!r}: precisions {precisions!r} is not a tuple from "
                         f"{TRAINING_PRECISIONS!r}")
    if all(p == "fp32" for p in precisions):
        return
    for method in ("forward", "infer", "backward"):
        function = getattr(cell, method, None)
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):  # absent, or a compiled function without one
            continue
        if not any(p.name == "precision" or p.kind is p.VAR_KEYWORD for p in parameters):
            raise ValueError(f"cell {name!r} lists precisions {tuple(precisions)!r}, but "
                             f"its {method}() takes no precision keyword (a cell built "
                             f"on a built-in one inherits its precisions: list "
                             f"precisions = ('fp32',) or take the keyword)")


def _check_loss_members(name: str, loss: Any) -> None:
    """ValueError naming the loss when its optional target_kind is not one of
    TARGET_KINDS (recurrent.protocols.Loss): another value (a typo) would turn off
    train's refusal of the loss for a task with the other kind of targets, and the
    conformance kit would guess the kind instead, without a word."""
    declared = getattr(loss, "target_kind", None)
    if declared is not None and declared not in TARGET_KINDS:
        raise ValueError(f"loss {name!r}: target_kind is {one_line(repr(declared))}, "
                         f"expected one of {', '.join(map(repr, TARGET_KINDS))}")


def _check_task_members(name: str, task: Any) -> None:
    """ValueError naming the task when its help or loss is not a non-empty str
    (recurrent.protocols.Task): help is printed as it is (None would read "None" in
    `recurrent plugins`, `recurrent train --help` and the task's own help), and loss is
    the name of the loss a run without --loss trains with."""
    for member in ("help", "loss"):
        value = getattr(task, member)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"task {name!r}: {member} is {one_line(repr(value))}, "
                             f"expected a non-empty str")


def _check_task_options(name: str, task: Any) -> None:
    """ValueError naming the task when options() or defaults() fails or returns what the
    CLI cannot build `recurrent train NAME` from: checked when the task registers, as
    `recurrent train --help` builds every task's command and one failure would stop it."""
    import click
    for method, kinds, expected in (("options", (list, tuple), "a list of click.Option"),
                                    ("defaults", (dict,), "a dict")):
        try:
            value = getattr(task, method)()
        except Exception as exc:
            raise ValueError(f"task {name!r}: {method}() raised {error_line(exc)}") from None
        if value is not None and not isinstance(value, kinds):
            raise ValueError(f"task {name!r}: {method}() returned {type(value).__name__}, "
                             f"expected {expected}")
        if method == "options":
            odd = [p for p in value or () if not isinstance(p, click.Parameter)]
            if odd:
                raise ValueError(f"task {name!r}: options() returned {odd[0]!r}, "
                                 f"expected {expected}")
            _check_option_names(name, value or ())
            _check_cell_defaults(name, task)
        else:
            _check_task_defaults(name, task, value or {})


def _check_cell_defaults(name: str, task: Any) -> None:
    """ValueError naming the task when its cell_defaults is not {cell name: {option key:
    value}} over the options of `recurrent train NAME` a run keeps (other than --cell
    itself; not --out, --resume or --ranks), each value of its option's type
    (config.option_type_problem) and one the option takes (its range, its choices: the
    command line's checks are not made on a default)."""
    by_cell = getattr(task, "cell_defaults", None)
    if by_cell is None:
        return
    if not (isinstance(by_cell, dict) and all(isinstance(cell, str) and isinstance(options, dict)
                                               for cell, options in by_cell.items())):
        raise ValueError(f"task {name!r}: cell_defaults is {one_line(repr(by_cell))}, "
                         f"expected a dict of {{cell name: {{option key: value}}}}")
    from .cli import training_params
    from .config import SHARED_DEFAULTS
    own = {param.name for param in task.options() or ()}
    options_of = {param.name: param for param in training_params(task)
                  if param.name in SHARED_DEFAULTS or param.name in own}
    options_of.pop("cell")
    for cell, options in by_cell.items():
        odd = sorted(map(str, set(options) - set(options_of)))
        if odd:
            raise ValueError(f"task {name!r}: cell_defaults[{cell!r}] sets {odd[0]!r}, not "
                             f"an option of `recurrent train {name}` a run keeps (other "
                             f"than cell, out, resume, ranks)")
        for key, value in options.items():
            problem = _default_problem(name, options_of[key], value)
            if problem:
                raise ValueError(f"task {name!r}: cell_defaults[{cell!r}] sets {key!r} to "
                                 f"{one_line(repr(value))}{problem}")


def _check_task_defaults(name: str, task: Any, defaults: dict) -> None:
    """ValueError naming the task when ``defaults`` (its defaults()) sets an option of
    `recurrent train NAME` (shared or its own), or options() gives one of its own options,
    a default of another type or one the option refuses (_default_problem): every
    `recurrent train NAME` would otherwise stop on it as if the user had typed it."""
    from .cli import training_params
    from .config import SHARED_DEFAULTS
    params = task.options() or ()
    own = {param.name for param in params}
    options_of = {param.name: param for param in training_params(task)
                  if param.name in SHARED_DEFAULTS or param.name in own}
    for param in params:
        # a default of plain values only: not a callable, nor None or click's marker of
        # an option without a default (click.core.UNSET in click 8.3 and later)
        if param.name in defaults or not isinstance(param.default, (str, numbers.Number,
                                                                    list, tuple)):
            continue
        problem = _default_problem(name, param, param.default)
        if problem:
            flag = next((o for o in param.opts if o.startswith("--")), param.name)
            raise ValueError(f"task {name!r}: options() gives {flag} the default "
                             f"{one_line(repr(param.default))}{problem}")
    for key, value in defaults.items():
        if key not in options_of or value is None:
            continue  # a key no option has: `recurrent plugins check` names it
        problem = _default_problem(name, options_of[key], value)
        if problem:
            raise ValueError(f"task {name!r}: defaults() sets {key!r} to "
                             f"{one_line(repr(value))}{problem}")


def _default_problem(name: str, param, value) -> str | None:
    """What makes ``value`` no default for the click option ``param`` of `recurrent train
    NAME`, as the end of a message: ", not KIND" for a value of another type
    (config.option_type_problem; not asked of an option of several values), ": WHY" for
    one the option refuses (its range, its choices: the command line's checks are not
    made on a default; a path's existence is not asked); None when it is one."""
    import click

    from .config import option_type_problem
    several = getattr(param, "multiple", False) or param.nargs != 1
    kind = None if several else option_type_problem(param, value)
    if kind:
        return f", not {kind}"
    # a path's or file's conversion checks (or opens) the file where the command runs,
    # which need not be where the plugin registers: a default "vocab.txt" of
    # click.Path(exists=True) is the user's to give or to have there, not a broken plugin
    if any(isinstance(t, (click.Path, click.File))
           for t in getattr(param.type, "types", None) or (param.type,)):
        return None
    try:
        param.type_cast_value(click.Context(click.Command(f"train {name}")), value)
    except (click.ClickException, TypeError, ValueError) as e:
        why = e.format_message() if isinstance(e, click.ClickException) else e
        return f": {one_line(str(why))}"
    return None


def _check_option_names(name: str, params) -> None:
    """ValueError naming the task's first option that takes a flag or a config key of
    `recurrent train`'s shared options (cli.reserved_train_options)."""
    from .cli import reserved_train_options
    keys, flags = reserved_train_options()
    for param in params:
        own = [*param.opts, *getattr(param, "secondary_opts", ())]
        flag = next((o for o in own if o in flags), None)
        if flag is not None:
            raise ValueError(f"task {name!r}: options() has {flag}, a shared option of "
                             f"`recurrent train`; change its default in defaults() instead, "
                             f"or give the task's option another name")
        if param.name in keys:
            raise ValueError(f"task {name!r}: options() stores "
                             f"{own[0] if own else 'an option'} under {param.name!r}, a "
                             f"config key that recurrent sets itself; give it another name")


def _dist_name(ep: importlib.metadata.EntryPoint) -> str:
    """The name of the distribution declaring ``ep`` ("?" when importlib cannot say)."""
    name = ep.dist.metadata["Name"] if ep.dist is not None else None
    return name or "?"


def _import_error_line(exc: BaseException) -> str:
    """How a plugin that cannot be imported is listed: error_line, except that a module
    exiting at import (sys.exit, or argparse in a script-style module: SystemExit, which
    would otherwise end every command) says so."""
    if isinstance(exc, SystemExit):
        code = exc.code  # sys.exit(2), sys.exit() or sys.exit("a message")
        detail = (f"exit code {code or 0}" if code is None or isinstance(code, int)
                  else one_line(str(code)))
        return (f"SystemExit: the module exited while being imported ({detail}); a plugin "
                f"must not run code such as argparse or sys.exit() at import")
    return error_line(exc)


def _plugin_error_line(exc: BaseException) -> str:
    """error_line, but a pluggy PluginValidationError keeps its reason: pluggy puts it on
    the last of several lines ("Plugin 'x' for hook 'register_cells'" / "hookimpl
    definition: ..." / "Argument(s) {'registry'} are declared in the hookimpl but can not
    be found in the hookspec"), and error_line keeps the first; joined with "; " here."""
    if isinstance(exc, pluggy.PluginValidationError):
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        if len(lines) > 1:
            return f"{type(exc).__name__}: {'; '.join(lines)}"
    return error_line(exc)


def _impls_of(manager: pluggy.PluginManager, hook_name: str, plugin: Any) -> list:
    hook = getattr(manager.hook, hook_name, None)
    if hook is None:
        return []
    return [impl for impl in hook.get_hookimpls() if impl.plugin is plugin]


def _call(impl, **kwargs) -> Any:
    """Call one hook implementation with the arguments it declares (pluggy allows a subset)."""
    return impl.function(*[kwargs[arg] for arg in impl.argnames])


def _unknown_hooks(plugin: Any, manager: pluggy.PluginManager) -> list[str]:
    """Names of the plugin's hook implementations that match no hook specification."""
    unknown = []
    for attr in dir(plugin):
        try:
            opts = manager.parse_hookimpl_opts(plugin, attr)
        except Exception:
            continue
        if opts is None or opts.get("optionalhook"):
            continue
        hook = getattr(manager.hook, attr, None)
        if hook is None or not hook.has_spec():
            unknown.append(attr)
    return unknown


def _unknown_hook_message(plugin: Any, manager: pluggy.PluginManager) -> str:
    known = ", ".join(hook for hook, _ in KINDS.values())
    return f"unknown hook {', '.join(_unknown_hooks(plugin, manager)) or '?'}; known hooks: {known}"


def _undecorated_hooks(plugin: Any, manager: pluggy.PluginManager) -> list[str]:
    """Hook-named functions missing the hookimpl marker: pluggy would silently skip them."""
    forgotten = []
    for hook_name, _ in KINDS.values():
        if callable(getattr(plugin, hook_name, None)) and \
                manager.parse_hookimpl_opts(plugin, hook_name) is None:
            forgotten.append(hook_name)
    return forgotten


# ---- the process-wide registry ---------------------------------------------------------

pm = pluggy.PluginManager("recurrent")
pm.add_hookspecs(hookspecs)
_registry = Registry(pm)


def register_plugin(plugin: Any, name: str, version: str | None = None) -> None:
    """Register a plugin module/object under ``name`` (undo with unregister_plugin)."""
    _registry.register_plugin(plugin, name, version)


def unregister_plugin(name: str) -> None:
    """Unregister the plugin named ``name``."""
    _registry.unregister_plugin(name)


def register_commands(cli: Any) -> None:
    """Add every plugin's commands to ``cli`` (a click.Group); failures are isolated."""
    _registry.register_commands(cli)


def entries(kind: str) -> dict[str, Entry]:
    """name -> Entry (object, providing plugin and version) for one kind."""
    return _registry.entries(kind)


def plugin_in_traceback(exc: BaseException) -> tuple[str, str] | None:
    """(name, version) of the installed plugin whose code raised ``exc``, or None."""
    return _registry.plugin_in_traceback(exc)


def broken_plugins() -> dict[str, str]:
    """Plugins that failed to load or register: name -> one-line error."""
    for kind in KINDS:
        _registry.entries(kind)
    return dict(_registry.broken)


def plugin_versions() -> dict[str, str]:
    """Loaded plugins: name -> version."""
    _registry.load()
    return {name: _registry.versions.get(name, "-")
            for name, plugin in pm.list_name_plugin() if plugin is not None}


def cells() -> dict[str, Any]:
    """All registered cells by name."""
    return {name: e.obj for name, e in entries("cell").items()}


def losses() -> dict[str, Any]:
    """All registered losses by name."""
    return {name: e.obj for name, e in entries("loss").items()}


def tasks() -> dict[str, Any]:
    """All registered tasks by name."""
    return {name: e.obj for name, e in entries("task").items()}


def provided(names: dict[str, str]) -> dict[str, dict]:
    """Which installed plugins provide ``names`` ({kind: name}): Registry.provided."""
    return _registry.provided(names)


def check_provided(provided: Any, what: str) -> None:
    """UserError naming the plugin to install when one a run needs is missing:
    Registry.check_provided."""
    _registry.check_provided(provided, what)


def get_cell(name: str) -> Any:
    """The cell registered under ``name``; an unknown name lists the known ones."""
    return _registry.get("cell", name)


def get_loss(name: str) -> Any:
    """The loss registered under ``name``; an unknown name lists the known ones."""
    return _registry.get("loss", name)


def get_task(name: str) -> Any:
    """The task registered under ``name``; an unknown name lists the known ones."""
    return _registry.get("task", name)
