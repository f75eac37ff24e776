"""The files `recurrent export` writes and `recurrent import` reads back: a --wide-folds
sentiment run (whose fold models no export holds) imports and evaluates as the original;
--out is never inside the run and never an existing file without --force; the default
--out of "." and of an int8 export; the message counts the parameters written; a run
exports to the same bytes every time, and an imported run to the file imported; import
refuses a named pipe or device, and a header declaring more values than the model, in
one line before reading any tensor."""
import contextlib
import json
import os
import shutil

import numpy as np
import pytest
from helpers import advised, bundled_reviews, invoke, ok, one_line_error, write_reviews

from recurrent.checkpoint import RunDir
from recurrent.runs import load_model

TINY = ["--threads", "1", "--quiet", "--no-plot", "--steps", "2", "--eval-every", "0"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Tiny runs: sentiment with a cross-fitted wide part (2 folds, a learned scale), its
    eval from the fold models' mean and from the full model; forecast (rnn_tanh)."""
    root = tmp_path_factory.mktemp("export_files")
    reviews = write_reviews(root / "reviews.csv", bundled_reviews(60))
    folds = ["--data", reviews, "--hidden", "8", "--embed-dim", "6", "--bigram-buckets",
             "64", "--batch-size", "32", "--wide-folds", "2", "--wide-scale",
             "--ensemble", "1", "--unidirectional", "--pooling", "last"]
    for mode in ("mean", "full"):
        ok(invoke("train", "sentiment", "--out", root / f"folds-{mode}", *folds,
                  "--wide-folds-eval", mode, *TINY))
    ok(invoke("train", "forecast", "--out", root / "forecast", "--cell", "rnn_tanh",
              "--hidden", "6", "--window", "8", *TINY))
    return root


def evaluation(run) -> dict:
    """`recurrent eval RUN --json` without the line naming the run."""
    report = json.loads(ok(invoke("eval", run, "--json", "--threads", "1")))
    report.pop("run")
    return report


def params(run) -> dict:
    with np.load(os.path.join(run, "best.npz")) as f:
        return {k[len("param/"):]: f[k] for k in f.files if k.startswith("param/")}


def listing(directory) -> dict:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


# ---- --wide-folds: the fold models are training-only -------------------------------------

@pytest.mark.parametrize("mode", ["mean", "full"])
def test_a_wide_folds_run_imports_and_evaluates_as_the_original(mode, runs, tmp_path):
    """Export leaves out wide.fold_weight / wide.fold_bias (only training reads them);
    import fills them with zeros, so both a safetensors and a torch file import, and the
    imported run's eval is the original's: exactly from safetensors, up to the rounding
    of the folded wide scale from torch."""
    run = runs / f"folds-{mode}"
    original = params(run)
    assert original["wide.fold_weight"].shape[0] == 2 and np.abs(
        original["wide.fold_weight"]).max() > 0
    if mode == "mean":  # eval's wide part: the fold models' mean, set at the start
        np.testing.assert_allclose(original["wide.weight"],
                                   original["wide.fold_weight"].mean(axis=0), atol=1e-6)
    want = evaluation(run)
    for fmt in ("safetensors", "torch"):
        out = tmp_path / f"m.{fmt}"
        ok(invoke("export", run, "--format", fmt, "--out", out))
        back = tmp_path / f"back-{fmt}"
        ok(invoke("import", out, "--out", back))
        imported = params(back)
        assert set(imported) == set(original)
        for name in ("wide.fold_weight", "wide.fold_bias"):
            assert not imported[name].any() and imported[name].shape == original[name].shape
        got = evaluation(back)
        if fmt == "safetensors":
            for name, value in original.items():
                if "fold" not in name:
                    np.testing.assert_array_equal(imported[name], value, err_msg=name)
            assert got == want
        else:
            assert got["metrics"]["confusion"] == want["metrics"]["confusion"]
            for key, value in want["metrics"].items():
                if key != "confusion":
                    assert got["metrics"][key] == pytest.approx(value, rel=1e-6), key
    texts = ["A gripping, funny film.", "Dull and far too long."]
    assert (ok(invoke("predict", tmp_path / "back-safetensors", *texts, "--json"))
            == ok(invoke("predict", run, *texts, "--json")))


def test_the_message_counts_the_parameters_written(runs, tmp_path):
    from safetensors.numpy import load_file
    run = runs / "folds-mean"
    model, _ = load_model(RunDir.open(str(run)))
    for fmt in ("safetensors", "torch"):
        out = tmp_path / f"m.{fmt}"
        printed = ok(invoke("export", run, "--format", fmt, "--out", out))
        written = sum(v.size for v in load_file(str(out)).values())
        assert written < model.num_params  # the fold models are not written
        assert f"wrote {out}: {written:,} parameters" in printed, printed


# ---- where an export may write -------------------------------------------------------------

def test_out_inside_the_run_is_refused_even_with_force(runs, tmp_path):
    run = runs / "forecast"
    before = listing(run)
    for name, fmt in (("best.npz", "onnx"), ("config.json", "safetensors"),
                      ("last.npz", "torch"), ("new.onnx", "onnx")):
        for force in ([], ["--force"]):
            one_line_error(invoke("export", run, "--format", fmt, "--out", run / name,
                                  *force), "is inside the run directory")
    os.symlink(run / "best.npz", tmp_path / "link.npz")  # a link into the run
    one_line_error(invoke("export", run, "--format", "onnx", "--out", tmp_path / "link.npz",
                          "--force"), "is inside the run directory", "resolves to")
    assert listing(run) == before


def test_a_file_of_another_run_is_never_replaced(runs, tmp_path):
    """Exporting one run over another run's files (its config.json, its checkpoint, a
    file of a member directory below it) is refused even with --force; a new file there
    is written."""
    run, other = runs / "forecast", runs / "folds-mean"
    (other / "member-0").mkdir(exist_ok=True)
    (other / "member-0" / "notes.txt").write_text("keep")
    before = listing(other)
    for target in (other / "config.json", other / "best.npz", other / "member-0" / "notes.txt"):
        one_line_error(invoke("export", run, "--format", "safetensors", "--out", target,
                              "--force"), "is a file of the run directory", str(other))
    assert listing(other) == before
    assert (other / "member-0" / "notes.txt").read_text() == "keep"
    ok(invoke("export", run, "--format", "safetensors", "--out", tmp_path / "new.safetensors"))
    ok(invoke("export", run, "--format", "safetensors", "--out", other / "copy.safetensors"))
    (other / "copy.safetensors").unlink()
    (other / "member-0" / "notes.txt").unlink()
    (other / "member-0").rmdir()


def test_an_existing_out_is_refused_unless_forced(runs, tmp_path):
    run = runs / "forecast"
    keep = tmp_path / "keep.txt"
    keep.write_text("keep me")
    for fmt in ("onnx", "safetensors", "torch"):
        one_line_error(invoke("export", run, "--format", fmt, "--out", keep),
                       "already exists", "--force")
        assert keep.read_text() == "keep me"
    ok(invoke("export", run, "--format", "safetensors", "--out", keep, "--force"))
    from safetensors.numpy import load_file
    assert set(load_file(str(keep))) == set(params(run))
    one_line_error(invoke("import", keep, "--out", run), "already holds a run")


def test_an_out_made_while_exporting_is_not_replaced_without_force(runs, tmp_path,
                                                                   monkeypatch):
    """A file that appears at --out after the export checked it (another export to the
    same name finishing first) is kept: the export fails in one line, as for a file there
    from the start, and leaves no temporary file; --force still replaces it."""
    import recurrent.export.run as export_run
    run = runs / "forecast"
    load = export_run.load_model

    def load_while_another_export_writes(*args, **kwargs):
        out.write_text("the other export's file")
        return load(*args, **kwargs)

    monkeypatch.setattr(export_run, "load_model", load_while_another_export_writes)
    for fmt in ("onnx", "safetensors", "torch"):
        out = tmp_path / f"m.{fmt}"
        one_line_error(invoke("export", run, "--format", fmt, "--out", out),
                       "already exists", "--force")
        assert out.read_text() == "the other export's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.safetensors",
                                                          "m.torch"]
    ok(invoke("export", run, "--format", "safetensors", "--out", tmp_path / "m.torch",
              "--force"))
    from safetensors.numpy import load_file
    assert set(load_file(str(tmp_path / "m.torch"))) == set(params(run))


def test_a_run_already_at_out_is_named_with_a_hint_that_works(runs, tmp_path):
    """An import into a directory holding a run names --resume only when the run there
    can be resumed: an imported one holds weights only, and --resume refuses it."""
    st = tmp_path / "m.safetensors"
    ok(invoke("export", runs / "forecast", "--format", "safetensors", "--out", st))
    one_line_error(invoke("import", st, "--out", runs / "forecast"), "already holds a run",
                   "--resume")
    # the advice names the command that continues the run there (import has no --resume)
    # with its path as a shell reads it, and following it works
    there = tmp_path / "a run"
    shutil.copytree(runs / "forecast", there)
    line = one_line_error(invoke("import", st, "--out", there), "already holds a run")
    assert advised(line) == ["train", "--resume", str(there)]
    ok(invoke(*advised(line), "--quiet"))
    imported = tmp_path / "imported"
    ok(invoke("import", st, "--out", imported))
    for command in (("import", st), ("train", "forecast", "--steps", 1)):
        result = invoke(*command, "--out", imported)
        one_line_error(result, "already holds an imported run", "choose another --out")
        assert "--resume" not in result.stderr


def test_default_outs_are_beside_the_run_and_int8_has_its_own(runs, monkeypatch):
    """The default of "." (run from inside the run directory) is beside the directory, not
    a hidden "..torch.safetensors" in it; int8 safetensors default to RUN.int8.safetensors,
    so they do not replace RUN.safetensors; a second export to a default is refused."""
    run = runs / "forecast"
    before = listing(run)
    made = [f"{run}{ext}" for ext in (".torch.safetensors", ".safetensors",
                                      ".int8.safetensors")]
    try:
        monkeypatch.chdir(run)
        printed = ok(invoke("export", ".", "--format", "torch"))
        assert printed.startswith(f"# wrote {made[0]}:")  # a comment of the printed file
        ok(invoke("export", "./", "--format", "safetensors"))
        fp32 = open(made[1], "rb").read()
        printed = ok(invoke("export", ".", "--format", "safetensors", "--precision", "int8"))
        assert printed.startswith(f"wrote {made[2]}:")
        assert open(made[1], "rb").read() == fp32
        from safetensors import safe_open
        with safe_open(made[2], framework="np") as f:
            assert f.metadata()["precision"] == "int8"
        one_line_error(invoke("export", ".", "--format", "safetensors", "--precision",
                              "int8"), "already exists", "--force")
        ok(invoke("export", ".", "--format", "safetensors", "--precision", "int8",
                  "--force"))
        assert listing(run) == before  # nothing written inside the run
    finally:
        for path in made:
            if os.path.exists(path):
                os.remove(path)


def test_a_line_break_in_out_stays_in_the_comments_of_the_torch_code(runs, tmp_path):
    """The summary above the printed torch code is comments line by line: an --out whose
    name holds a line break keeps the printed text a Python file with nothing before the
    code but comments."""
    out = tmp_path / "two\nlines.safetensors"
    printed = ok(invoke("export", runs / "forecast", "--format", "torch", "--out", out))
    assert out.exists()
    compile(printed, "model.py", "exec")
    summary = printed.split("\n\n", 1)[0].splitlines()
    assert summary[:2] == [f"# wrote {tmp_path}/two", "# lines.safetensors: " +
                           summary[1].split(": ", 1)[1]]
    assert all(line.startswith("# ") for line in summary)


def test_a_named_pipe_called_config_json_above_out_is_not_opened(tmp_path):
    """The search for an enclosing run reads only a regular config.json: a named pipe of
    that name in a parent of --out is not opened (open() would wait for a writer, and
    what one wrote would decide the refusal). A writer waits here with a run's keys: had
    the pipe been opened, it would have read them and refused the existing file."""
    import threading

    from recurrent.out_paths import check_out
    pipe = tmp_path / "config.json"
    os.mkfifo(pipe)
    run_keys = json.dumps({"task": "forecast", "config": {}, "task_state": {},
                           "model_spec": {}})

    def write():
        with contextlib.suppress(BrokenPipeError), open(pipe, "w") as f:
            f.write(run_keys)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    (tmp_path / "sub").mkdir()
    out = tmp_path / "sub" / "model.onnx"
    out.write_bytes(b"old")
    try:
        check_out("--out", str(out), None, replace=True, refusal="already exists")
    finally:
        reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer finish
        writer.join()
        os.close(reader)


@pytest.mark.parametrize("args", [["--format", "safetensors"],
                                  ["--format", "safetensors", "--precision", "int8"],
                                  ["--format", "torch"], ["--format", "onnx"]],
                         ids=["safetensors", "int8", "torch", "onnx"])
def test_the_same_run_exports_to_the_same_bytes_every_time(args, runs, tmp_path):
    """Four exports of one run are one file; so is the export of a run imported from
    such a file (the safetensors ones) and the onnx export of a run imported from the
    float32 file: the metadata's config.json leaves out the imported run's
    "imported_from"."""
    run = runs / "forecast"
    files = []
    for k in range(4):
        ok(invoke("export", run, *args, "--out", tmp_path / f"m{k}"))
        files.append((tmp_path / f"m{k}").read_bytes())
    assert all(data == files[0] for data in files)
    if args[1] == "onnx":
        ok(invoke("export", run, "--format", "safetensors", "--out", tmp_path / "f.st"))
        ok(invoke("import", tmp_path / "f.st", "--out", tmp_path / "imported"))
    else:
        ok(invoke("import", tmp_path / "m0", "--out", tmp_path / "imported"))
    ok(invoke("export", tmp_path / "imported", *args, "--out", tmp_path / "again"))
    assert (tmp_path / "again").read_bytes() == files[0]


def test_a_named_pipe_or_device_given_to_import_is_refused_in_one_line(runs, tmp_path):
    """`recurrent import` reads only a regular file: a named pipe would wait for a writer
    (with none, the command would never end), and a device is not an exported file. A
    writer waits here with an exported file's bytes, so that a pipe that was opened
    would not hang the test; either is refused in one line naming it, and no run is
    made."""
    import threading
    exported = tmp_path / "m.safetensors"
    ok(invoke("export", runs / "forecast", "--format", "safetensors", "--out", exported))
    pipe = tmp_path / "pipe.safetensors"
    os.mkfifo(pipe)

    def write():
        with contextlib.suppress(BrokenPipeError), open(pipe, "wb") as f:
            f.write(exported.read_bytes())

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        one_line_error(invoke("import", pipe, "--out", tmp_path / "r"), str(pipe),
                       "not a regular file")
    finally:
        reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer finish
        writer.join()
        os.close(reader)
    one_line_error(invoke("import", os.devnull, "--out", tmp_path / "r"), os.devnull,
                   "not a regular file")
    assert not (tmp_path / "r").exists()


def test_a_header_declaring_a_huge_tensor_is_refused_before_it_is_read(runs, tmp_path):
    """A file whose header declares a tensor of 1 GB (a sparse file of that size, so the
    header's offsets are within it) beside a small model's metadata: refused in one line
    from the sizes the header declares, before any tensor is read (the memory allocated
    meanwhile, as tracemalloc counts it, stays far below the tensor's size)."""
    import math
    import struct
    import tracemalloc
    exported = tmp_path / "m.safetensors"
    ok(invoke("export", runs / "forecast", "--format", "safetensors", "--out", exported))
    data = exported.read_bytes()
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    # the tensor stored last, declared huge: its bytes still start where they did
    last = max((name for name in header if name != "__metadata__"),
               key=lambda name: header[name]["data_offsets"][1])
    start = header[last]["data_offsets"][0]
    huge = 2 ** 28  # float32 values
    header[last] = {"dtype": "F32", "shape": [huge], "data_offsets": [start, start + 4 * huge]}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    big = tmp_path / "big.safetensors"
    with open(big, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data[8 + size:])
        f.truncate(8 + len(text) + start + 4 * huge)  # sparse: nothing of it on disk
    sizes = {name: math.prod(entry["shape"]) for name, entry in header.items()
             if name != "__metadata__"}
    tracemalloc.start()
    try:
        result = invoke("import", big, "--out", tmp_path / "r")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 ** 27, peak
    one_line_error(result, str(big), "does not fit the model its metadata describes",
                   f"declares {sum(sizes.values()):,} values")
    assert not (tmp_path / "r").exists()
