"""A run whose data file has moved (recurrent/moved_data.py): `train --resume RUN --data
NEW` and `eval RUN --split S --data NEW` read the run's data from its new place once the
file the run reads is gone. The resume continues exactly as it would have from the old
place, saves the new place (of the run and of each part), and a file that is not the
run's data is refused in one line with nothing written."""
from __future__ import annotations

import json
import shutil

import pytest
from helpers import (advised, bundled_reviews, checkpoint_params, invoke, ok, one_line_error,
                     reversal_tsv, same_params, sunspot_rows, tiny_text, train_tiny,
                     unreadable_run, write_csv, write_reviews)

from recurrent.trainer import Trainer

pytest.importorskip("recurrent_plugins.cells",
                    reason="the fast built-in cells (recurrent_plugins.cells) are not built")


def _files(run):
    """Every file of a run directory (its parts' included) and its bytes."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file()}


def _saved_data(run):
    info = json.loads((run / "config.json").read_text())
    return info["config"]["data"], info["task_state"]["data"]


def _resumed_both(stays, moves, data, new, *options):
    """`train --resume` of ``stays`` in place, then, its data file gone, of ``moves`` with
    the data's new place."""
    ok(invoke("train", "--resume", stays, *options))
    data.unlink()
    ok(invoke("train", "--resume", moves, *options, "--data", new))


def _parts_moved(stays, moves, new, names):
    """Each part (member or candidate directory) of ``moves`` saves the data's new place
    and holds the parameters of the same part of ``stays``."""
    for name in names:
        assert _saved_data(moves / name) == (str(new), str(new))
        assert same_params(checkpoint_params(stays / name), checkpoint_params(moves / name))


def _moved_pair(tmp_path, train):
    """(the run whose data stays, the same run copied, whose data has moved there): the
    data file trained on, and its new place."""
    old = tmp_path / "old"
    old.mkdir()
    data = train(old, tmp_path / "stays")
    shutil.copytree(tmp_path / "stays", tmp_path / "moves")
    new = tmp_path / "new"
    new.mkdir()
    shutil.copy(data, new / data.name)
    return tmp_path / "stays", tmp_path / "moves", data, new / data.name


def _char_lm(directory, out):
    data = tiny_text(directory)
    ok(train_tiny(data, out))
    return data


def test_a_char_lm_run_resumes_from_its_datas_new_place_as_from_the_old(tmp_path):
    stays, moves, data, new = _moved_pair(tmp_path, _char_lm)
    ok(invoke("train", "--resume", stays, "--steps", 4))
    data.rename(tmp_path / "elsewhere.txt")  # gone from where `moves` reads it
    one_line_error(invoke("train", "--resume", moves, "--steps", 4),
                   f"{data}, the data {moves} was trained on, is gone",
                   "restore it, or give its new place with --data NEW")
    ok(invoke("train", "--resume", moves, "--steps", 4, "--data", new))
    assert same_params(checkpoint_params(stays), checkpoint_params(moves))
    assert _saved_data(moves) == (str(new), str(new))
    # the new place is the run's from now on: eval and a later resume read it
    ok(invoke("eval", moves))
    ok(invoke("train", "--resume", moves, "--steps", 5))


def test_eval_scores_a_split_of_the_moved_data_as_it_did(tmp_path):
    stays, moves, data, new = _moved_pair(tmp_path, _char_lm)
    before = json.loads(ok(invoke("eval", moves, "--split", "valid", "--json")))
    data.unlink()
    one_line_error(invoke("eval", moves), f"{data}, the data {moves} was trained on, is gone",
                   "--split valid --data NEW", "--data FILE alone scores a file whole")
    files = _files(moves)
    after = json.loads(ok(invoke("eval", moves, "--split", "valid", "--data", new, "--json")))
    assert after["metrics"] == before["metrics"] and after["baselines"] == before["baselines"]
    # the file read is named as given, as --data always is, with the split scored
    assert (after["data"], after["split"], before["data"]) == (str(new), "valid", None)
    assert _files(moves) == files  # eval saves nothing: the run still names the old place


def test_a_file_that_is_not_the_runs_data_is_refused_and_nothing_written(tmp_path):
    stays, moves, data, new = _moved_pair(tmp_path, _char_lm)
    other = tmp_path / "other.txt"
    other.write_text(data.read_text(encoding="utf-8") + "one more line.\n", encoding="utf-8")
    # while the run's file is there, --data must name it
    one_line_error(invoke("train", "--resume", moves, "--steps", 4, "--data", other),
                   "--data cannot change when resuming")
    data.unlink()
    files = _files(moves)
    for args, fragments in (
            (["--data", other], [f"--data {other} (in place of {data}, which is gone): "
                                 f"{other} does not hold the data this run was trained on",
                                 "give the file the run was trained on"]),
            (["--data", tmp_path / "missing.txt"], ["in place of", "not found"]),
            (["--data", tmp_path], ["not a file the run can read again"])):
        one_line_error(invoke("train", "--resume", moves, "--steps", 4, *args), *fragments)
        assert _files(moves) == files
    line = one_line_error(invoke("eval", moves, "--split", "valid", "--data", other),
                          f"{other} does not hold the data this run was trained on")
    assert "changed since" not in line, line  # another file, not the run's edited


def test_standard_input_is_not_a_new_place(tmp_path):
    from click.testing import CliRunner

    from recurrent.cli import cli
    stays, moves, data, new = _moved_pair(tmp_path, _char_lm)
    text = data.read_text(encoding="utf-8")
    data.unlink()
    files = _files(moves)
    result = CliRunner().invoke(cli, ["train", "--resume", str(moves), "--steps", "4",
                                      "--data", "-"], input=text)
    one_line_error(result, "not a file the run can read again", "give the file's path")
    assert _files(moves) == files


def _reviews(directory, out):
    data = directory / "reviews.csv"
    write_reviews(data, bundled_reviews(60))
    ok(invoke("train", "sentiment", "--data", data, "--steps", 3, "--hidden", 8,
              "--ensemble", 2, "--threads", 1, "--quiet", "--no-plot", "--out", out))
    return data


def test_an_ensemble_moves_with_its_members(tmp_path):
    stays, moves, data, new = _moved_pair(tmp_path, _reviews)
    _resumed_both(stays, moves, data, new, "--steps", 5)
    _parts_moved(stays, moves, new, ["member-0", "member-1"])
    assert _saved_data(moves) == (str(new), str(new))
    assert (json.loads(ok(invoke("eval", moves, "--json")))["metrics"]
            == json.loads(ok(invoke("eval", stays, "--split", "test", "--data", new,
                                "--json")))["metrics"])


def _forecast_candidates(monkeypatch):
    """A _moved_pair training function: a forecast run stopped while it trains its
    second candidate, still choosing."""
    def interrupted(directory, out):
        data = write_csv(directory / "sunspots.csv", ("year", "sunspots"), sunspot_rows())
        with monkeypatch.context() as m:  # a Ctrl-C during the second candidate
            m.setattr(Trainer, "_stop_requested", lambda self: (
                self.run.path.endswith("candidate-1") and self.position.step == 3))
            result = invoke("train", "forecast", "--data", data, "--window", "16",
                            "--hidden", 8, "--epochs", 1, "--threads", 1, "--quiet",
                            "--no-plot", "--out", out)
        assert result.exit_code == 130, result.output
        return directory / "sunspots.csv"
    return interrupted


def test_candidates_still_choosing_move_each_with_its_own_state(tmp_path, monkeypatch):
    stays, moves, data, new = _moved_pair(tmp_path, _forecast_candidates(monkeypatch))
    _resumed_both(stays, moves, data, new)
    info = json.loads((moves / "config.json").read_text())
    assert info["chose"] == json.loads((stays / "config.json").read_text())["chose"]
    _parts_moved(stays, moves, new, ["candidate-0", "candidate-1"])
    assert same_params(checkpoint_params(stays, "best.npz"),
                       checkpoint_params(moves, "best.npz"))


def _pairs(directory, out):
    data, _ = reversal_tsv(directory / "pairs.tsv", "abcd", 400)
    ok(invoke("train", "seq2seq", "--data", data, "--steps", 2, "--hidden", 8,
              "--embed-dim", 4, "--threads", 1, "--quiet", "--no-plot", "--out", out))
    return data


def test_a_seq2seq_run_moves(tmp_path):
    stays, moves, data, new = _moved_pair(tmp_path, _pairs)
    other = tmp_path / "other.tsv"
    other.write_text(new.read_text(encoding="utf-8") + "abc\tcba\n", encoding="utf-8")
    ok(invoke("train", "--resume", stays, "--steps", 3))
    data.unlink()
    files = _files(moves)
    for args in (["train", "--resume", moves, "--steps", 3, "--data", other],
                 ["eval", moves, "--split", "valid", "--data", other]):
        line = one_line_error(invoke(*args), f"--data {other} (in place of {data}, which "
                              f"is gone): {other} does not hold the data this run was "
                              f"trained on", "give the file the run was trained on")
        assert "changed since" not in line, line
    assert _files(moves) == files
    ok(invoke("train", "--resume", moves, "--steps", 3, "--data", new))
    assert same_params(checkpoint_params(stays), checkpoint_params(moves))
    assert _saved_data(moves) == (str(new), str(new))
    new.write_text(new.read_text(encoding="utf-8") + "abc\tcba\n", encoding="utf-8")
    one_line_error(invoke("eval", moves), "changed since this run was trained")


def test_an_ended_run_saves_its_datas_new_place_and_nothing_else(tmp_path):
    stays, moves, data, new = _moved_pair(tmp_path, _reviews)
    data.unlink()
    files = _files(moves)
    text = ok(invoke("train", "--resume", moves, "--data", new, "--eval-every", 7))
    assert "nothing to train" in text and "the data's new place saved, nothing else written" in text, text
    for part in (moves, moves / "member-0", moves / "member-1"):
        assert _saved_data(part) == (str(new), str(new))
        info = json.loads((part / "config.json").read_text())
        assert info["config"]["eval_every"] != 7  # an ended run's other options: not saved
    # the checkpoints and records are as they were: only the config.json files changed
    assert {k: v for k, v in _files(moves).items() if not k.endswith("config.json")} == {
        k: v for k, v in files.items() if not k.endswith("config.json")}
    assert (json.loads(ok(invoke("eval", moves, "--json")))["metrics"]
            == json.loads(ok(invoke("eval", stays, "--split", "test", "--data", new,
                                "--json")))["metrics"])


def test_no_data_file_at_the_old_path_is_gone(tmp_path):
    """A directory where the data file was, or a file in place of its directory: no
    task reads either as the run's data, so --data gives the new place."""
    stays, moves, data, new = _moved_pair(tmp_path, _char_lm)
    data.unlink()
    data.mkdir()
    ok(invoke("eval", moves, "--split", "valid", "--data", new))
    one_line_error(invoke("eval", moves), f"{data}, the data {moves} was trained on, is gone")
    data.rmdir()
    data.parent.rmdir()
    data.parent.write_text("not a directory\n", encoding="utf-8")
    ok(invoke("train", "--resume", moves, "--steps", 4, "--data", new))
    assert _saved_data(moves) == (str(new), str(new))


def test_a_plugin_task_without_moved_files_says_its_data_cannot_move(tmp_path):
    import recurrent
    from recurrent import plugins
    from recurrent_plugins.char_lm.task import CharLM

    # char-lm as a plugin task written before Task.moved_files
    members = {k: v for k, v in vars(CharLM).items()
               if k not in ("moved_files", "__dict__", "__weakref__")}
    unmovable = type("Unmovable", CharLM.__bases__, dict(members, name="unmovable-lm"))

    class Plugin:
        @recurrent.hookimpl
        def register_tasks(self, register):
            register(unmovable())

    plugins.register_plugin(Plugin(), "test-unmovable")
    try:
        data = tiny_text(tmp_path)
        run = tmp_path / "run"
        ok(invoke("train", "unmovable-lm", "--data", data, "--steps", 2, "--hidden", 8,
                  "--threads", 1, "--quiet", "--no-plot", "--out", run))
        new = tmp_path / "new.txt"
        data.rename(new)
        files = _files(run)
        for args in (["train", "--resume", run, "--steps", 3, "--data", new],
                     ["eval", run, "--split", "valid", "--data", new]):
            one_line_error(invoke(*args), f"{data}, the data this run was trained on, is "
                           f"gone, and the task unmovable-lm cannot read it from a new "
                           f"place", "restore the file there")
        assert _files(run) == files
    finally:
        plugins.unregister_plugin("test-unmovable")


def _forecast(directory, out):
    """A _moved_pair training function: a forecast run of one window and input mode."""
    data = write_csv(directory / "sunspots.csv", ("year", "sunspots"), sunspot_rows())
    ok(invoke("train", "forecast", "--data", data, "--window", "16", "--inputs", "level",
              "--hidden", 8, "--steps", 2, "--threads", 1, "--quiet", "--no-plot",
              "--out", out))
    return directory / "sunspots.csv"


def test_a_forecast_file_that_is_not_the_runs_data_asks_for_the_runs(tmp_path):
    stays, moves, data, new = _moved_pair(tmp_path, _forecast)
    data.unlink()
    new.write_text("".join(new.read_text(encoding="utf-8").splitlines(True)[:-3]),
                   encoding="utf-8")
    files = _files(moves)
    for args in (["train", "--resume", moves, "--steps", 4, "--data", new],
                 ["eval", moves, "--split", "valid", "--data", new]):
        line = one_line_error(invoke(*args), f"--data {new} (in place of {data}, which is "
                              f"gone)", "give the file the run was trained on")
        # the file given is not the run's to restore, and giving it with --data was done
        assert "restore it" not in line and "new data with --data" not in line, line
    assert _files(moves) == files


def test_a_member_moves_with_its_ensemble_not_alone(tmp_path):
    """Moved alone, a member would no longer match its ensemble, which could then be
    neither resumed nor evaluated."""
    stays, moves, data, new = _moved_pair(tmp_path, _reviews)
    data.unlink()
    for name in ("last.npz", "best.npz", "metrics.jsonl"):  # member-1: none trained yet
        (moves / "member-1" / name).unlink()
    files = _files(moves)
    for member in (moves / "member-0", moves / "member-1"):  # ended, or steps left
        one_line_error(invoke("train", "--resume", member, "--data", new),
                       f"--data {new}: {member} is a part of {moves}, whose parts read one "
                       f"data file", f"`recurrent train --resume {moves} --data {new}`")
        assert _files(moves) == files
    ok(invoke("train", "--resume", moves, "--data", new))
    for k in range(2):
        assert _saved_data(moves / f"member-{k}") == (str(new), str(new))
    ok(invoke("eval", moves))


def _full_disk_at(monkeypatch, n):
    """The ``n``-th config.json write from now fails as on a full disk (ENOSPC) and leaves
    that file as it was, as atomic_write does: a move stopped between its writes."""
    import errno
    import os

    from recurrent import checkpoint
    real, seen = checkpoint._atomic_write, []

    def write(path, *args, **kwargs):
        if os.path.basename(path) == "config.json":
            seen.append(path)
            if len(seen) == n:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        return real(path, *args, **kwargs)
    monkeypatch.setattr(checkpoint, "_atomic_write", write)


@pytest.mark.parametrize("failing", [1, 2, 3, 4])
def test_a_move_stopped_between_its_writes_is_finished_by_the_same_command(
        tmp_path, monkeypatch, failing):
    """The run's options, its task state, member-0's, member-1's config.json: whichever
    write fails, the others done or not, the same command given again finishes the move."""
    stays, moves, data, new = _moved_pair(tmp_path, _reviews)
    ok(invoke("train", "--resume", stays, "--steps", 5))
    data.unlink()
    with monkeypatch.context() as m:
        _full_disk_at(m, failing)
        one_line_error(invoke("train", "--resume", moves, "--steps", 5, "--data", new),
                       "config.json")
    ok(invoke("train", "--resume", moves, "--steps", 5, "--data", new))
    _parts_moved(stays, moves, new, ["member-0", "member-1"])
    assert _saved_data(moves) == (str(new), str(new))
    ok(invoke("eval", moves))


def test_candidates_left_behind_by_a_stopped_move_move_with_the_run(tmp_path, monkeypatch):
    stays, moves, data, new = _moved_pair(tmp_path, _forecast_candidates(monkeypatch))
    ok(invoke("train", "--resume", stays))
    data.unlink()
    with monkeypatch.context() as m:
        _full_disk_at(m, 3)  # candidate-0's: the run's saved, the candidates' not
        one_line_error(invoke("train", "--resume", moves, "--data", new), "config.json")
    ok(invoke("train", "--resume", moves, "--data", new))
    _parts_moved(stays, moves, new, ["candidate-0", "candidate-1"])
    assert same_params(checkpoint_params(stays, "best.npz"),
                       checkpoint_params(moves, "best.npz"))


def test_data_the_run_cannot_read_is_as_good_as_gone(tmp_path):
    """A run copied from another user's machine, its data under a folder this user cannot
    enter: --data gives the data's new place, checked as for a file that is gone."""
    stays, moves, data, new = _moved_pair(tmp_path, _char_lm)
    ok(invoke("train", "--resume", stays, "--steps", 4))
    files = _files(moves)
    one_line_error(unreadable_run(data.parent, "train", "--resume", moves, "--steps", 4),
                   f"{data}, the data {moves} was trained on, cannot be read (permission "
                   f"denied)", "give its new place with --data NEW")
    assert _files(moves) == files
    ok(unreadable_run(data.parent, "eval", moves, "--split", "valid", "--data", new))
    ok(unreadable_run(data.parent, "train", "--resume", moves, "--steps", 4, "--data", new))
    assert same_params(checkpoint_params(stays), checkpoint_params(moves))
    assert _saved_data(moves) == (str(new), str(new))


def test_a_forecast_file_given_that_cannot_be_read_is_not_called_gone(tmp_path):
    stays, moves, data, new = _moved_pair(tmp_path, _forecast)
    data.unlink()
    line = one_line_error(unreadable_run(new.parent, "train", "--resume", moves, "--steps",
                                         4, "--data", new), f"--data {new} (in place of "
                          f"{data}, which is gone)", "permission denied")
    assert f"{new}' is gone" not in line, line


def test_the_resume_a_member_is_told_to_run_works_from_paths_with_blanks(tmp_path):
    """The command that moves a member's data with its ensemble, copied as it stands,
    runs: the run's and the data's paths quoted as a shell reads them."""
    base = tmp_path / "my runs"
    base.mkdir()
    stays, moves, data, new = _moved_pair(base, _reviews)
    new = new.rename(new.parent / "new reviews.csv")
    data.unlink()
    line = one_line_error(invoke("train", "--resume", moves / "member-0", "--data", new),
                          f"{moves / 'member-0'} is a part of {moves}")
    assert advised(line) == ["train", "--resume", str(moves), "--data", str(new)]
    ok(invoke(*advised(line)))
    for k in range(2):
        assert _saved_data(moves / f"member-{k}") == (str(new), str(new))


def _stopped_at_first_part(tmp_path, monkeypatch, train, *options):
    """(the run, its first part, the data's new place): a _moved_pair run whose move to
    the new place stopped at the first part's config.json, the run's already saved."""
    _, moves, data, new = _moved_pair(tmp_path, train)
    data.unlink()
    with monkeypatch.context() as m:
        _full_disk_at(m, 3)
        one_line_error(invoke("train", "--resume", moves, *options, "--data", new),
                       "config.json")
    first = "member-0" if train is _reviews else "candidate-0"
    return moves, moves / first, new


def test_a_member_left_behind_by_a_stopped_move_is_named_with_the_command_that_finishes_it(
        tmp_path, monkeypatch):
    moves, part, new = _stopped_at_first_part(tmp_path, monkeypatch, _reviews, "--steps", 5)
    files = _files(moves)
    for command in (["eval", moves], ["predict", moves, "a fine film"]):
        line = one_line_error(invoke(*command), f"{part} does not belong to the ensemble "
                              f"{moves}: a move of its data was stopped half-way; finish it "
                              f"with `recurrent train --resume {moves} --data {new}`")
    assert _files(moves) == files
    # the run's own place gone as well: the move is finished from wherever the data is
    new.rename(tmp_path / "elsewhere.csv")
    one_line_error(invoke("eval", moves), "a move of its data was stopped half-way, and "
                   f"the run's data is not there either ({new}, which is gone): restore it, "
                   f"or finish the move giving its new place: `recurrent train --resume "
                   f"{moves} --data NEW`")
    (tmp_path / "elsewhere.csv").rename(new)
    ok(invoke(*advised(line)))
    assert _saved_data(part) == (str(new), str(new))
    ok(invoke("eval", moves))


def test_a_candidate_left_behind_by_a_stopped_move_is_named_as_a_member_is(
        tmp_path, monkeypatch):
    """eval and predict send a run still choosing to its resume before its candidates are
    matched, which a resume does once they have moved along: the match itself is judged
    here."""
    from recurrent import candidates
    from recurrent.checkpoint import RunDir
    from recurrent.errors import UserError
    moves, part, new = _stopped_at_first_part(tmp_path, monkeypatch,
                                              _forecast_candidates(monkeypatch))
    with pytest.raises(UserError) as refused:
        candidates.check(RunDir.open(str(moves)))
    assert str(refused.value) == (f"{part} does not belong to the run {moves}: a move of its "
                                  f"data was stopped half-way; finish it with `recurrent "
                                  f"train --resume {moves} --data {new}`")


def test_a_part_that_differs_otherwise_is_still_named_by_what_differs(tmp_path):
    stays, moves, data, new = _moved_pair(tmp_path, _reviews)
    info = json.loads((moves / "member-1" / "config.json").read_text())
    info["config"]["hidden"] = 9
    (moves / "member-1" / "config.json").write_text(json.dumps(info))
    one_line_error(invoke("eval", moves), f"{moves / 'member-1'} does not belong to the "
                   f"ensemble {moves}: its option hidden differs from the ensemble's")


def test_a_member_of_other_data_whose_file_is_gone_is_not_taken_for_one_left_behind(
        tmp_path):
    """A member copied in from an ensemble trained on other data, whose file is gone,
    reads a gone file that is not the run's, as a member a stopped move left behind does:
    its content tells them apart, and it is refused for what differs, never moved."""
    run = tmp_path / "run"
    ok(invoke("train", "sentiment", "--data", write_reviews(tmp_path / "ours.csv",
              bundled_reviews(20)), "--steps", 2, "--hidden", 8, "--ensemble", 2, "--quiet",
              "--no-plot", "--out", run))
    theirs = tmp_path / "theirs.csv"
    ok(invoke("train", "sentiment", "--data", write_reviews(theirs, bundled_reviews(21)),
              "--steps", 2, "--hidden", 8, "--ensemble", 2, "--quiet", "--no-plot", "--out",
              tmp_path / "other"))
    shutil.rmtree(run / "member-1")
    shutil.copytree(tmp_path / "other" / "member-1", run / "member-1")
    theirs.unlink()
    files = _files(run)
    for command in (["eval", run], ["train", "--resume", run, "--data", tmp_path / "ours.csv"]):
        one_line_error(invoke(*command), f"{run / 'member-1'} does not belong to the "
                       f"ensemble {run}: its task state differs from the ensemble's")
    assert _files(run) == files
