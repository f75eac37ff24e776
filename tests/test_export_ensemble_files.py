"""`recurrent export ENSEMBLE_RUN --format safetensors` and `recurrent import` of the file:
one file of every kept member's tensors ("members.{k}."), the member numbers and the
records of those left out in its metadata; the import makes the ensemble again (each
member's directory), which evaluates and predicts exactly as the original, exports to the
same bytes, also in int8 and with a member left out. A file that does not fit, or an
--out where a member's directory holds a run, is refused in one line, and an import that
fails while writing leaves nothing behind."""
import json
import os
import shutil

import pytest
from helpers import (bundled_reviews, invoke, ok, one_line_error, small_sentiment_ensemble,
                     write_reviews)

from recurrent.checkpoint import DIVERGED
from recurrent.export import safetensors as st
from recurrent.export.torch_ensemble import MEMBERS_KEY

@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    return small_sentiment_ensemble(tmp_path_factory.mktemp("ensemble_files"))


def evaluated(run, *options):
    record = json.loads(ok(invoke("eval", run, "--json", *options)))
    record.pop("run")
    return record


def predicted(run, csv, precision):
    return ok(invoke("predict", run, "--data", csv, "--json", "--precision", precision))


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_an_ensemble_exports_and_imports_to_the_same_run(ensemble, tmp_path, precision):
    out = tmp_path / "ens.safetensors"
    printed = ok(invoke("export", ensemble, "--format", "safetensors", "--out", out,
                        "--precision", precision))
    assert "parameters of 3 members" in printed
    _, info = st.header(str(out))
    assert info[MEMBERS_KEY] == {"kept": [0, 1, 2], "left_out": {}}
    back = tmp_path / "back"
    ok(invoke("import", out, "--out", back))
    assert sorted(os.listdir(back)) == ["config.json", "member-0", "member-1", "member-2"]
    assert json.loads((back / "config.json").read_text())["config"]["ensemble"] == 3
    assert evaluated(back, "--precision", precision) == evaluated(ensemble, "--precision",
                                                                  precision)
    csv = write_reviews(tmp_path / "texts.csv", bundled_reviews(12))
    assert predicted(back, csv, precision) == predicted(ensemble, csv, precision)
    again = tmp_path / "again.safetensors"
    ok(invoke("export", back, "--format", "safetensors", "--out", again,
              "--precision", precision))
    assert again.read_bytes() == out.read_bytes()


def test_a_member_left_out_is_left_out_again(ensemble, tmp_path):
    run = tmp_path / "ens"
    shutil.copytree(ensemble, run)
    summary = {"status": "diverged", "error": "the loss is nan", "step": 3}
    (run / "member-1" / DIVERGED).write_text(json.dumps(summary))
    out = tmp_path / "ens.safetensors"
    result = invoke("export", run, "--format", "safetensors", "--out", out)
    assert "parameters of 2 members" in ok(result)
    (run / "member-2" / DIVERGED).write_text(json.dumps(summary))
    one = tmp_path / "one.safetensors"
    assert "parameters of 1 member under" in ok(invoke("export", run, "--format",
                                                       "safetensors", "--out", one))
    os.remove(run / "member-2" / DIVERGED)
    assert f"{run / 'member-1'} diverged in training, left out" in result.stderr
    tensors, info = st.read(str(out))
    assert info[MEMBERS_KEY] == {"kept": [0, 2], "left_out": {"1": summary}}
    assert not any(name.startswith("members.2.") for name in tensors)
    back = tmp_path / "back"
    ok(invoke("import", out, "--out", back))
    assert json.loads((back / "member-1" / DIVERGED).read_text()) == summary
    assert not (back / "member-1" / "best.npz").exists()
    for command in (["eval"], ["export", "--format", "safetensors"]):  # the member alone
        one_line_error(invoke(*command, back / "member-1"),
                       f"{back / 'member-1'} diverged in training and is left out of its "
                       f"ensemble: ens.safetensors, which it was imported from, holds no "
                       f"parameters of it")
    result = invoke("eval", back)
    assert "(an ensemble of 3 members; member-1 diverged in training, left out" in ok(result)
    assert evaluated(back) == evaluated(run)
    again = tmp_path / "again.safetensors"
    ok(invoke("export", back, "--format", "safetensors", "--out", again))
    assert again.read_bytes() == out.read_bytes()


def rewritten(source, target, tensors=None, record=None, ensemble=None):
    """A copy of the exported file ``source`` at ``target`` with other tensors, another
    members record in its metadata or another --ensemble in its options."""
    read, info = st.read(str(source))
    if record is not None:
        info = {**info, MEMBERS_KEY: record}
    if ensemble is not None:
        info = {**info, "config": {**info["config"], "ensemble": ensemble}}
    st.write(str(target), read if tensors is None else tensors(read), info)
    return target


@pytest.mark.parametrize("change,says", [
    (dict(record={"kept": [0, 1], "left_out": {}}),
     f"its {MEMBERS_KEY} metadata is corrupted (expected the numbers 0-2"),
    (dict(record={"kept": [0, 1, 1], "left_out": {"2": {}}}),
     f"its {MEMBERS_KEY} metadata is corrupted"),
    (dict(record={"kept": [], "left_out": {"0": {}, "1": {}, "2": {}}}),
     f"its {MEMBERS_KEY} metadata is corrupted"),
    (dict(record=["0", "1", "2"]), f"its {MEMBERS_KEY} metadata is corrupted"),
    (dict(record={"kept": [0, 1], "left_out": {"\u00b2": {}}}),  # a digit int() refuses
     f"its {MEMBERS_KEY} metadata is corrupted"),
    (dict(tensors=lambda t: {**t, "members.\u00b2.head.bias": t["members.0.head.bias"]}),
     "does not fit the ensemble its metadata describes: tensor 'members.\u00b2.head.bias' "
     "belongs to none of its 3 members"),
    (dict(tensors=lambda t: {**t, "members.3.head.bias": t["members.0.head.bias"]}),
     "does not fit the ensemble its metadata describes: tensor 'members.3.head.bias' "
     "belongs to none of its 3 members"),
    (dict(tensors=lambda t: {k: v for k, v in t.items() if k != "members.1.head.bias"}),
     "does not fit the model its metadata describes"),
    (dict(ensemble=5000), "the run's option ensemble is 5000: expected a whole number from "
                          "1 to 1000 (is its config.json damaged?) (read from "),
])
def test_a_file_that_does_not_fit_its_ensemble_is_refused(ensemble, tmp_path, change, says):
    out = tmp_path / "ens.safetensors"
    ok(invoke("export", ensemble, "--format", "safetensors", "--out", out))
    bad = rewritten(out, tmp_path / "bad.safetensors", **change)
    one_line_error(invoke("import", bad, "--out", tmp_path / "back"), says)
    assert not (tmp_path / "back").exists()


def test_a_member_directory_holding_a_run_is_refused_before_anything_is_written(
        ensemble, tmp_path):
    out = tmp_path / "ens.safetensors"
    ok(invoke("export", ensemble, "--format", "safetensors", "--out", out))
    back = tmp_path / "back"
    ok(invoke("import", out, "--out", back))
    one_line_error(invoke("import", out, "--out", back), f"{back} already holds an imported run")
    shutil.copytree(back / "member-1", tmp_path / "other" / "member-1")
    one_line_error(invoke("import", out, "--out", tmp_path / "other"),
                   f"{tmp_path / 'other' / 'member-1'} already holds")
    assert sorted(os.listdir(tmp_path / "other")) == ["member-1"]


@pytest.mark.parametrize("existing", [False, True])
def test_an_import_failing_at_a_members_checkpoint_leaves_nothing(ensemble, tmp_path,
                                                                  monkeypatch, existing):
    """The second member's best.npz cannot be written (a full disk): the first member's
    directory is taken back, and so is --out unless it was there, empty, before."""
    import recurrent.export.run as export_run
    from recurrent.errors import UserError
    out = tmp_path / "ens.safetensors"
    ok(invoke("export", ensemble, "--format", "safetensors", "--out", out))
    back = tmp_path / "back"
    if existing:
        back.mkdir()
    save_arrays, calls = export_run.save_arrays, []

    def full_at_the_second(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise UserError(f"cannot write {path}: No space left on device")
        return save_arrays(path, *args, **kwargs)

    monkeypatch.setattr(export_run, "save_arrays", full_at_the_second)
    one_line_error(invoke("import", out, "--out", back), "No space left on device")
    assert len(calls) == 2
    assert os.listdir(back) == [] if existing else not back.exists()
    monkeypatch.setattr(export_run, "save_arrays", save_arrays)
    ok(invoke("import", out, "--out", back))
    assert evaluated(back) == evaluated(ensemble)


@pytest.mark.parametrize("winners", ["config.json", "best.npz"])
def test_an_import_that_loses_a_race_for_a_member_leaves_the_winners_files(
        ensemble, tmp_path, monkeypatch, winners):
    """Another process makes member-1's file between the import's check and its write:
    the import takes back its own files (member-0's) and leaves the other's alone."""
    from recurrent.checkpoint import RunDir
    from recurrent.errors import UserError
    from recurrent.export.run import import_file
    out = tmp_path / "ens.safetensors"
    ok(invoke("export", ensemble, "--format", "safetensors", "--out", out))
    back = tmp_path / "back"
    original = RunDir.make_directory.__func__

    def check_then_lose(cls, path):
        original(cls, path)
        if os.path.basename(path) == "member-1":
            (back / "member-1" / winners).write_text("the winner's")

    monkeypatch.setattr(RunDir, "make_directory", classmethod(check_then_lose))
    with pytest.raises(UserError, match="member-1"):
        import_file(str(out), str(back))
    assert sorted(os.listdir(back)) == ["member-1"]
    assert os.listdir(back / "member-1") == [winners]
    assert (back / "member-1" / winners).read_text() == "the winner's"
