"""Exporting a run directory to a file, and making a run directory from an exported file:
what `recurrent export` and `recurrent import` do.

Every check runs before anything is written; files are written atomically (a temporary
file moved over the target), so a failed export leaves no partial file, and the lines an
export prints are printed before its files are moved into place, so that a print that
fails (standard output on a full disk, a closed pipe) leaves none either. An export never
writes inside the run directory, nor over an existing file of any other run directory,
nor over any other existing file unless asked to (``force``).
"""
from __future__ import annotations

import contextlib
import importlib
import os

import numpy as np

from .. import __version__
from .. import candidates, tuning
from ..candidates import CANDIDATE_DIR
from ..checkpoint import (BEST, CONFIG_FILE, DIVERGED, RunDir, atomic_write, info_problem,
                          save_arrays, write_json)
from ..config import TrainingConfig
from ..ensemble import (MEMBER_DIR, EnsembleModel, check_members_new, member_info,
                        member_path, size as ensemble_size)
from ..errors import UserError
from ..extras import install_hint
from ..figures import counted
from ..params import parameter_budget
from .. import out_paths, std_streams
from ..out_paths import check_out
from ..quant import PRECISIONS
from ..runs import load_model, loss_name, warn_best_missing
from ..seq2seq import KIND as SEQ2SEQ, Seq2SeqModel
from . import EXTENSIONS, FORMATS, INT8_EXTENSION, seq2seq_onnx_paths
from . import safetensors as st
from . import seq2seq_names, torch_ensemble, torch_names, torch_seq2seq

SOFTMAX_LOSSES = ("cross_entropy",)  # models whose outputs are logits of a softmax


def default_out(run_path: str, fmt: str, precision: str = "fp32") -> str:
    """runs/shakespeare -> /abs/runs/shakespeare.onnx: beside the run directory, from its
    absolute path (so "." names the directory, not a hidden file inside it); an int8
    safetensors file gets its own name (runs/shakespeare.int8.safetensors), so it never
    takes the float32 file's. A part of a run (runs/rt/member-0: an ensemble's member, a
    candidate) goes beside the whole run too: runs/rt.member-0.safetensors."""
    ext = INT8_EXTENSION if fmt == "safetensors" and precision == "int8" else EXTENSIONS[fmt]
    path = os.path.abspath(run_path)
    whole = whole_run(path)
    if whole != path:
        path = whole + "." + os.path.relpath(path, whole).replace(os.sep, ".")
    return path + ext


def whole_run(path: str) -> str:
    """The run directory ``path`` is a part of (an ensemble's member-k, a candidate-k,
    inside a directory with a config.json), outermost first; else ``path`` itself."""
    path = os.path.abspath(path)
    parts = tuple(name.format("") for name in (MEMBER_DIR, CANDIDATE_DIR))
    while (os.path.basename(path).startswith(parts)
           and os.path.basename(path).rpartition("-")[2].isdigit()
           and os.path.isfile(os.path.join(os.path.dirname(path), CONFIG_FILE))):
        path = os.path.dirname(path)
    return path


def export_run(run_path: str, fmt: str, out: str | None = None, checkpoint: str = "best",
               state_inputs: bool = False, precision: str = "fp32",
               force: bool = False, show=None) -> tuple[str, list[str]]:
    """Write the run's model in format ``fmt`` -> (path written, lines to show).
    ``show(lines)`` (the command's print) is called with those lines once the files are
    written and before they are moved into place: when it fails, no file is written
    or replaced, and its error is raised as it was (_shown).
    ``state_inputs`` (onnx): the graph takes the initial state as inputs h_0 (c_0).
    ``precision`` "int8" (safetensors): the recurrent weights stored as int8 with their
    row scales, for models that run int8 inference. ``force``: replace an existing
    ``out`` (never one inside the run directory, nor a file of another run directory).
    An encoder-decoder's ONNX export writes two files (seq2seq_onnx_paths(out)); the
    path returned is the encoder's. Once written, a note on stderr when the best
    parameters asked for were last.npz's (_noted). A torch export's ``out`` is made
    absolute: the printed module loads the file by that path from any directory."""
    try:
        return _export_run(run_path, fmt, out, checkpoint, state_inputs, precision, force,
                           show)
    except _ShowFailed as e:  # the files are as they were: the print's own error
        raise e.args[0] from None


def _export_run(run_path, fmt, out, checkpoint, state_inputs, precision, force, show):
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if state_inputs and fmt != "onnx":
        raise UserError("--state-inputs is for --format onnx (the graph's inputs)")
    if precision == "bf16":  # bf16 products read the float32 parameters: none are stored
        raise UserError("--precision bf16 is how recurrent multiplies, with float32 "
                        "parameters: leave --precision out to export them")
    if precision != "fp32" and fmt != "safetensors":
        raise UserError(f"--precision {precision} is for --format safetensors (onnx and torch "
                        f"files hold float32 weights)")
    run = RunDir.open(run_path)
    out = out_paths.output_named("--out", out, default_out(run.path, fmt, precision),
                                 "the exported file")
    if fmt == "torch":  # the path the printed code loads, whatever its working directory
        out = os.path.abspath(out)
    std_streams.check_printable(f"--out {out}", out)  # the lines printed name the file
    out_paths.check_file_name("--out", out)  # the name seq2seq_onnx_paths extends
    seq2seq = _is_seq2seq(run)
    if seq2seq:
        _check_seq2seq(run_path, state_inputs)
    outs = seq2seq_onnx_paths(out) if seq2seq and fmt == "onnx" else (out,)
    for path in outs:
        # nothing of the whole run is written over, when the run exported is a part of it
        check_out("--out", path, whole_run(run.path), replace=force,
                  refusal="already exists; give --force to replace it")
    model, info = load_model(run, checkpoint, precision=precision)  # refuses no int8 path
    ensemble = isinstance(model, EnsembleModel)
    if ensemble:
        _check_ensemble(run_path, model, state_inputs)
    if seq2seq:
        rnn = model.encoder  # the decoder has the same cell and regularisation
    else:
        rnn = (model.members[0] if ensemble else model).rnn
    if fmt == "onnx":  # before the onnx package is looked for: installing it would not help
        torch_names.check_onnx_cell(rnn)
    if fmt == "onnx" and seq2seq:
        return _noted(outs[0], _export_seq2seq_onnx(model, info, outs, force, show), model,
                      info, checkpoint)
    if fmt == "onnx":
        return _noted(out, _export_onnx(model, info, out, state_inputs, force, show), model,
                      info, checkpoint)
    if fmt == "torch" and seq2seq:
        source = torch_seq2seq.torch_source(model, out, info)  # refuses cells torch lacks
    elif fmt == "torch" and ensemble:  # refuses cells torch lacks, and a plugin's combine
        torch_ensemble.check_combine(model, loss_name(info), fmt)
        source = torch_ensemble.torch_source(model, out, loss_name(info))
    elif fmt == "torch":
        source = torch_names.torch_source(model, out)
    names = seq2seq_names if seq2seq else torch_ensemble if ensemble else torch_names
    int8 = tuple(names.rnn_weights(model)) if precision == "int8" else ()
    if seq2seq:
        tensors = seq2seq_names.tensors(model)
    elif ensemble:  # every member's, prefixed, and which members they are
        tensors = torch_ensemble.tensors(model, fold_scale=fmt == "torch")
        info = {**info, torch_ensemble.MEMBERS_KEY: torch_ensemble.members_record(model)}
    else:
        tensors = torch_names.tensors(model, fold_scale=fmt == "torch")
    written = sum(value.size for value in tensors.values())  # not the training-only ones
    members = f" of {counted(len(model.members), 'member')}" if ensemble else ""
    lines = []

    def summary(size):  # the file's size: that of its temporary file, not yet in place
        lines.append(f"wrote {out}: {written:,} parameters{members} under PyTorch names, "
                     + (f"the recurrent weights in int8 with float32 row scales ('<name>"
                        f"{st.SCALE_SUFFIX}'), " if int8 else "")
                     + f"the run's config.json as metadata ({size:,} bytes)")
        if fmt == "torch":  # the lines before the code are comments: stdout is a Python file
            lines.append("shapes:")
            lines.extend(f"  {name} {tuple(value.shape)}" for name, value in tensors.items())
            if seq2seq:
                lines.extend(torch_seq2seq.header_lines(model, info, out))
            if ensemble:
                lines.extend(torch_ensemble.header_lines(model, loss_name(info)))
            lines.append("a torch model that loads it (strict=True):")
            # each physical line commented: a line break in --out's path would end a comment
            lines[:] = [f"# {part}" for line in lines for part in line.splitlines() or [""]]
            lines.extend([""] + source)
        else:
            lines.append(f"make a run of it again: recurrent import "
                         f"{out_paths.shell_word(out)} --out RUN")
        _shown(show, lines)

    with _not_replaced(out, force):
        st.write(out, tensors, info, int8, replace=force, then=summary)
    return _noted(out, lines, model, info, checkpoint)


class _ShowFailed(Exception):
    """The OSError of an export's show() (args[0]), carried through the atomic write that
    called it: atomic_write would turn an OSError into a WriteError naming the file."""


def _shown(show, lines) -> None:
    """``show(lines)``, unless ``show`` is None, called by a write before its file is
    moved into place: an OSError of it (standard output on a full disk or /dev/full, a
    pipe its reader closed) becomes _ShowFailed, which atomic_write passes on after
    removing its temporary file, and export_run raises the OSError again as it was
    (cli.py names standard output in its one line; click ends at a closed pipe)."""
    if show is None:
        return
    try:
        show(lines)
    except OSError as e:
        raise _ShowFailed(e) from None


def _noted(out, lines, model, info, checkpoint):
    """(out, lines) of an export that has written its files, once it has said on stderr
    when the best parameters it read were last.npz's (runs.warn_best_missing)."""
    if checkpoint == "best":
        warn_best_missing(model, info["config"])
    return out, lines


def _is_seq2seq(run: RunDir) -> bool:
    """Whether the run's model is an encoder-decoder (its model_spec's "model")."""
    spec = run.info().get("model_spec")
    return isinstance(spec, dict) and spec.get("model") == SEQ2SEQ


def _check_seq2seq(run_path, state_inputs):
    """UserError for what an encoder-decoder's export does not offer: --state-inputs
    (the decoder-step graph always takes the states as inputs; the encoder starts from
    zeros, as in recurrent)."""
    if state_inputs:
        raise UserError(f"--state-inputs: {run_path} is an encoder-decoder (seq2seq): its "
                        f"decoder-step graph always takes the states as inputs, and its "
                        f"encoder starts from zeros")


def _check_ensemble(run_path, model, state_inputs):
    """UserError for what an ensemble's export cannot hold: the graph's initial states
    are one network's."""
    count = len(model.members)
    if state_inputs:
        raise UserError(f"--state-inputs: {run_path} is an ensemble of {count} members, "
                        f"each with its own state; export a member to feed its state")


@contextlib.contextmanager
def _not_replaced(out, force):
    """The refusal of an existing ``out`` without ``force`` for a file that appeared
    after check_out looked (another export to the same name finishing first): the write
    creates ``out`` without replacing it (atomic_write's replace=False), and its
    FileExistsError becomes the same one-line refusal."""
    try:
        yield
    except FileExistsError:
        if force:
            raise
        raise UserError(f"--out {out} already exists; give --force to replace it") from None


def _onnx_module(name):
    """recurrent.export.<name> (onnx or onnx_seq2seq); UserError when the onnx package
    it needs is missing."""
    try:
        return importlib.import_module(f"{__package__}.{name}")
    except ImportError:
        raise UserError(f"--format onnx needs the onnx package: "
                        f"{install_hint('onnx')}") from None


def _export_onnx(model, info, out, state_inputs, force=False, show=None):
    onnx_export = _onnx_module("onnx")
    loss = loss_name(info)
    if isinstance(model, EnsembleModel):
        torch_ensemble.check_combine(model, loss, "onnx")
    proto = onnx_export.onnx_model(model, loss in SOFTMAX_LOSSES, st.config_metadata(info),
                                   state_inputs, loss=loss)
    data = proto.SerializeToString()
    lines = _described(out, proto)

    def write(f):
        f.write(data)
        _shown(show, lines)  # before the file is moved into place

    with _not_replaced(out, force):
        atomic_write(out, write, replace=force, follow_link=True)
    return lines


def _export_seq2seq_onnx(model, info, outs, force=False, show=None):
    """An encoder-decoder's two graphs (onnx_seq2seq.py) into ``outs`` (the encoder's
    file, the decoder step's), both built and checked before either is written."""
    onnx_seq2seq = _onnx_module("onnx_seq2seq")
    metadata = st.config_metadata(info)
    protos = (onnx_seq2seq.encoder_model(model, metadata),
              onnx_seq2seq.decoder_step_model(model, metadata))
    lines = []
    for path, proto in zip(outs, protos):
        lines += _described(path, proto)
    lines += ["decode with them: docs/export.md, \"Encoder-decoders (seq2seq)\""]
    _write_all([(path, proto.SerializeToString()) for path, proto in zip(outs, protos)],
               force, then=lambda: _shown(show, lines))
    return lines


def _write_all(files, force, then=None):
    """Write each (path, bytes) of ``files`` atomically, so that a failed export leaves
    them all as they were: the writes nest, each file's temporary file written before
    the next one's and moved into place after it, so a write that fails (a full disk, a
    name linked into a directory that cannot be written) fails before any file is
    replaced; when a move into place fails after a later file's was made, the files
    this export created are removed. ``then()``: called once every temporary file is
    written, before any is moved into place (export prints its lines there)."""
    made = []

    def write_from(k):
        if k == len(files):
            if then is not None:
                then()
            return
        path, data = files[k]
        existed = os.path.lexists(path)

        def write(f):
            f.write(data)
            write_from(k + 1)  # the files after this one, complete before it is moved

        with _not_replaced(path, force):
            atomic_write(path, write, replace=force, follow_link=True)
        if not existed:
            made.append(path)

    try:
        write_from(0)
    except BaseException:
        for path in made:
            with contextlib.suppress(OSError):
                os.remove(path)
        raise


def _described(path, proto) -> list[str]:
    """The lines naming a written ONNX file, its graph's inputs and outputs."""
    from .onnx import OPSET
    graph = proto.graph
    describe = lambda v: f"  {v.name} {_dims(v)}"  # noqa: E731
    return ([f"wrote {path}: ONNX opset {OPSET}, IR version {proto.ir_version}",
             "inputs:"] + [describe(v) for v in graph.input]
            + ["outputs:"] + [describe(v) for v in graph.output])


def _dims(value) -> str:
    dims = value.type.tensor_type.shape.dim
    return "(" + ", ".join(d.dim_param or str(d.dim_value) for d in dims) + ")"


def import_file(path: str, out: str) -> RunDir:
    """A run directory ``out`` made from an exported safetensors file: its config.json
    from the metadata, its best.npz from the tensors (checked against the model first);
    an ensemble's file makes an ensemble run, each member's directory with its best.npz
    (or, for a member left out, its DIVERGED record). The parameters no export holds
    because only training reads them (the wide part's cross-fitted fold models,
    torch_names.training_only) are zeros: evaluation and prediction never read them.
    ``out`` inside another run's directory is refused, as train's --out is (start_run)."""
    out_paths.check_outside_runs("--out", out)
    # the model from the header's metadata, before any tensor is read
    sizes, info = st.header(path)
    declared = sum(sizes.values())
    model = _model_of(path, info, declared)
    try:
        members = ensemble_size(info["config"])
    except UserError as e:
        raise UserError(f"{e} (read from {path}'s metadata)") from None
    kept, left_out = (torch_ensemble.read_members_record(info, members, path)
                      if members > 1 else ([0], {}))
    # at most one float32 scale per weight value (int8 files): a file declaring more than
    # twice the models' parameters cannot fit them, and is refused before it is read
    count = sum(value.size for value in model.state_dict().values()) * len(kept)
    if declared > 2 * count:
        raise UserError(f"{path} does not fit the model its metadata describes: it "
                        f"declares {declared:,} values for a model of {count:,} parameters")
    tensors, info = st.read(path)
    if isinstance(model, Seq2SeqModel):
        try:
            tensors = seq2seq_names.model_names(tensors)  # the file's names: the parts'
        except ValueError as e:
            raise UserError(f"{path} does not fit the model its metadata describes: "
                            f"{e}") from None
    if members > 1:
        try:
            parts = torch_ensemble.member_tensors(tensors, len(kept))
        except ValueError as e:
            raise UserError(f"{path} does not fit the ensemble its metadata describes: "
                            f"{e}") from None
        models = [model] + [_model_of(path, info, declared) for _ in parts[1:]]
        for part, member in zip(parts, models):
            _load(member, part, path)
        return _write_ensemble(path, out, info, dict(zip(kept, models)), left_out)
    _load(model, tensors, path)
    return _write_run(path, out, info, model, first_of=None)


def _load(model, tensors: dict, path: str) -> None:
    """Load a network's exported ``tensors`` into ``model``: a wide scale --format torch
    folded in is 1, training-only parameters zeros (UserError naming ``path`` for
    tensors that do not fit)."""
    if "wide.scale" in model.param_shapes() and "wide.scale" not in tensors:
        tensors["wide.scale"] = np.ones(1, np.float32)  # --format torch folded it in
    for name, shape in torch_names.training_only(model).items():
        if name not in tensors:
            tensors[name] = np.zeros(shape, np.float32)
    try:
        model.load_state_dict(tensors)
    except ValueError as e:
        raise UserError(f"{path} does not fit the model its metadata describes: "
                        f"{str(e)[:200]}") from None


def _write_best(run: RunDir, model, path: str) -> None:
    """``model``'s parameters as the best.npz of the run being made (created, never
    replaced: see atomic_write)."""
    save_arrays(run.file(BEST), {f"param/{k}": v for k, v in model.state_dict().items()},
                {"version": __version__, "imported_from": os.path.basename(path)},
                replace=False)


def _write_run(path: str, out: str, info: dict, model, first_of) -> RunDir:
    """The run directory ``out`` of an import of ``path``: config.json from ``info``,
    written last, after best.npz of ``model`` or, for an ensemble (``model`` None),
    after ``first_of(run)`` has made its members' directories. Nothing is left of a
    run whose writing fails (a full disk, Ctrl-C, a run made there meanwhile)."""
    existed = os.path.isdir(out)
    wrote = []

    def first(run):
        if model is None:
            first_of(run)
            return
        # counted as this import's from the start of the write: a Ctrl-C or SIGTERM as
        # it ends, the file in place, still takes it back
        wrote.append(run)
        try:
            _write_best(run, model, path)
        except FileExistsError:  # another process's best.npz, made meanwhile: left alone
            wrote.clear()
            raise

    try:
        return RunDir.create(out, info["task"], info["config"], info["task_state"],
                             info["model_spec"], info.get("version", __version__),
                             extra={"imported_from": os.path.basename(path),
                                    **_choice(info)},
                             first=first, kernel=info.get("kernel"))
    except BaseException as e:
        if not _whole(out, e):
            _remove_half_made_run(RunDir(out), existed, bool(wrote))
        raise


def _write_ensemble(path: str, out: str, info: dict, models: dict,
                    left_out: dict) -> RunDir:
    """The ensemble run ``out`` of an import of ``path``: each member's directory (a
    whole run, member_info's options) with its best.npz from ``models`` ({member number:
    model}) or its DIVERGED record from ``left_out``, then the ensemble's config.json.
    The members' directories are checked before any is made, and those made are taken
    back when the import fails."""
    count = ensemble_size(info["config"])
    RunDir.check_new(out)  # the ensemble's own refusal first, then its members'
    check_members_new(out, info["config"])
    existed_out = os.path.isdir(out)
    made = []  # (a member's RunDir, whether its directory was there, the files it wrote)

    def members(run):
        for k in range(count):
            member = member_info(info, k)
            existed = os.path.isdir(member_path(run.path, k))
            wrote = []

            def first(part, k=k):
                made.append((part, existed, wrote))
                # each file counted as this import's from the start of its write (as
                # _write_run counts best.npz), unless another process's was there
                name = BEST if k in models else DIVERGED
                wrote.append(name)
                try:
                    if k in models:
                        _write_best(part, models[k], path)
                    else:
                        write_json(part.file(DIVERGED), left_out[k], replace=False)
                except FileExistsError:
                    wrote.remove(name)
                    raise
                wrote.append(CONFIG_FILE)  # RunDir.create writes it next

            try:
                RunDir.create(member_path(run.path, k), member["task"], member["config"],
                              member["task_state"], member["model_spec"],
                              member.get("version", __version__),
                              extra={"imported_from": os.path.basename(path)},
                              first=first, kernel=info.get("kernel"))
            except UserError:  # its config.json not written, or another process's
                if CONFIG_FILE in wrote:
                    wrote.remove(CONFIG_FILE)
                raise

    try:
        return _write_run(path, out, info, None, first_of=members)
    except BaseException as e:
        if _whole(out, e):
            raise
        for part, existed, wrote in reversed(made):
            for name in wrote:
                with contextlib.suppress(OSError):
                    os.remove(part.file(name))
            _remove_half_made_run(part, existed, wrote=False)
        _remove_half_made_run(RunDir(out), existed_out, wrote=False)
        raise


def _model_of(path: str, info: dict, count: int):
    """The model a file's run ``info`` (its config.json metadata) describes, its config
    checked as RunDir.open checks a run's; its sizes cannot ask for more parameters than
    the ``count`` values the file declares (plus a learned wide scale, which --format
    torch folds into the weights)."""
    # what RunDir.open requires of a run's config.json (its task's state checked too),
    # so the run made from it opens
    try:
        problem = info_problem(info)
    except UserError as e:  # a task of a plugin not installed here, say
        raise UserError(f"{e} (read from {path}'s metadata)") from None
    if problem:
        raise UserError(f"{path}: its config.json metadata is corrupted: {problem}")
    config = TrainingConfig.from_json(info["config"], path)
    tuning.use_for_run(info.get("kernel"), path)  # the original run's record, checked
    try:
        with parameter_budget(count + 1, path, training_only=False):
            return config.build_model(info["model_spec"])
    except UserError as e:  # a cell or task of a plugin not installed here, say
        raise UserError(f"{e} (read from {path}'s metadata)") from None


def _choice(info: dict) -> dict:
    """{"chose": record} of a run whose candidates (--window auto, --inputs auto) it
    chose among, as config.json holds it (candidates.choose), so the imported run's
    eval reports that choice as the original's does; {} for a run that made none, or
    whose record eval could not read (a file edited elsewhere): it only informs."""
    record = info.get(candidates.CHOSE)
    try:
        if record and candidates.chosen_text({candidates.CHOSE: record}):
            return {candidates.CHOSE: record}
    except (KeyError, TypeError, IndexError, ValueError, AttributeError, UserError):
        pass
    return {}


def _whole(out: str, error: BaseException) -> bool:
    """Whether the import into ``out`` that raised ``error`` had written its config.json,
    its last file (a Ctrl-C or SIGTERM as that write ends): the run is whole and is kept.
    A config.json another process wrote there meanwhile makes RunDir.create's UserError,
    and that run is left alone."""
    return (not isinstance(error, UserError)
            and os.path.exists(os.path.join(out, CONFIG_FILE)))


def _remove_half_made_run(run: RunDir, existed: bool, wrote: bool) -> None:
    """Undo an import whose config.json could not be written: its best.npz (``wrote``:
    this import wrote it), and the directory when the import made it (when empty)."""
    if wrote:
        try:
            os.remove(run.file(BEST))
        except OSError:
            pass
    if not existed:
        try:
            os.rmdir(run.path)
        except OSError:
            pass
