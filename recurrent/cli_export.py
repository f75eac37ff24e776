"""`recurrent export` and `recurrent import`: a trained run to an ONNX, safetensors or
torch file, and a safetensors file back to a run (recurrent/export/)."""
from __future__ import annotations

import click

from . import out_paths, std_streams
from .cli_options import checkpoint_option
from .export import EXTENSIONS, FORMATS, INT8_EXTENSION
from .quant import PRECISIONS


@click.command("export", short_help="Export a trained RUN's model to a file.")
@click.argument("run")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True,
              help="onnx: the whole model as an ONNX graph (needs the onnx extra; a seq2seq "
                   "run: an encoder graph and a decoder-step graph); "
                   "safetensors: weights under PyTorch names plus the run's config; "
                   "torch: a safetensors state_dict for torch.nn modules, whose code "
                   "is printed.")
@click.option("--out", default=None, metavar="FILE",
              help="File to write, outside the run directory [default: RUN"
                   + ", RUN".join(EXTENSIONS.values()) + f", RUN{INT8_EXTENSION} with "
                   "--precision int8]; a seq2seq run's onnx export writes two files: FILE with "
                   "its .onnx replaced by (or, without one, followed by) .encoder.onnx and "
                   ".decoder.onnx.")
@click.option("--force", is_flag=True,
              help="Replace --out if it exists (a path inside the run, or an existing file of "
                   "another run directory, is always refused).")
@checkpoint_option
@click.option("--state-inputs", is_flag=True,
              help="onnx: take the initial recurrent state as inputs h_0 (and c_0), to "
                   "run a sequence piece by piece [default: zeros].")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True,
              help="safetensors: int8 stores the recurrent weights quantised per row (int8 "
                   "and a float32 scale per row), as int8 inference runs them.")
def export_command(run, fmt, out, force, checkpoint, state_inputs, precision):
    """Export a trained RUN's model to a file (docs/export.md: inputs, outputs, names)."""
    from .export.run import export_run
    # printed before the file is moved into place: a print that fails leaves no file
    export_run(run, fmt, out, checkpoint, state_inputs, precision, force,
               show=lambda lines: click.echo("\n".join(lines)))


@click.command("import", short_help="Make a run directory from an exported file.")
@click.argument("file")
@click.option("--out", required=True, metavar="RUN", help="Run directory to create.")
def import_command(file, out):
    """Make a run directory from a file of `recurrent export --format safetensors|torch`;
    eval and predict then work on it."""
    from .export.run import import_file
    out = out_paths.output_named("--out", out, None, "a run directory", required=True)
    for what, path in ((file, file), (f"--out {out}", out)):  # both named in the line printed
        std_streams.check_printable(what, path)
    run = import_file(file, out)
    click.echo(f"imported {file} as run {run.path} "
               f"(next: `recurrent predict {out_paths.shell_word(run.path)} ...`)")
