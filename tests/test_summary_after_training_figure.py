"""A run whose task makes choices after training (forecast's --blend auto, a plugin
task's after_training) ends with the figure of the finished model, the one `recurrent
eval RUN --split valid` shows, and the training's own best figure beside it; so does a
resume of it with nothing left to train."""
import json

import recurrent
import train_toys
from helpers import invoke, ok, registered_plugin, write_csv
from recurrent.figures import format_value


def co2_rows(count: int) -> list[list]:
    """[[date, value], ...]: the first ``count`` weeks of the bundled CO2 series."""
    from recurrent_plugins.forecast import series as dataio
    series = dataio.read_series(dataio.resolve_source("co2"), None, None)
    return [[str(t), float(v)] for t, v in zip(series.times[:count], series.values[:count, 0])]


def blended_run(tmp_path):
    """(the run, train's output) of a 20-step forecast run on 400 weeks of CO2, whose
    --blend auto choice changes the model."""
    data = write_csv(tmp_path / "co2.csv", ("date", "co2"), co2_rows(400))
    run = tmp_path / "run"
    return run, ok(invoke("train", "forecast", "--data", data, "--inputs", "level",
                          "--window", 16, "--steps", 20, "--hidden", 8, "--threads", 1,
                          "--quiet", "--no-plot", "--out", run))


def test_final_figure_is_the_finished_models(tmp_path):
    run, out = blended_run(tmp_path)
    state = json.loads((run / "config.json").read_text())["task_state"]
    assert 0 <= state["blend"] < 1, state["blend"]  # the choice changed the model
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    trained = min(r["metrics"]["loss"] for r in logged if r["kind"] == "eval")
    evaluated = json.loads(ok(invoke("eval", run, "--split", "valid", "--json")))
    finished = evaluated["metrics"]["loss"]
    assert format_value(finished) != format_value(trained)
    assert (f"best valid loss {format_value(finished)} with the choices made after "
            f"training ({format_value(trained)} before them), ") in out, out


def test_an_ended_resume_gives_the_finished_figure_too(tmp_path):
    # a resume with nothing left to train repeats the summary's figure, the one eval shows
    run, out = blended_run(tmp_path)
    figure = out.split("done after 20 steps: ")[1].split(", clipped")[0]
    assert "with the choices made after training" in figure, out
    again = ok(invoke("train", "--resume", run))
    assert f"after 20 steps ({figure}); nothing written" in again, again



class _Scaled:
    """A model whose logits are divided by a temperature."""

    def __init__(self, model, temperature):
        self.model, self.temperature = model, temperature

    def forward(self, *args, **kwargs):
        logits, state = self.model.forward(*args, **kwargs)
        return logits / self.temperature, state


class Calibrated(train_toys.ToySign):
    """toy-sign with a temperature on its logits that after_training chooses on the
    validation split. It has no training_state, so its saved task state does not tell
    whether that choice changed the model."""
    name = "toy-sign-calibrated"

    def evaluate(self, state, split, config, model):
        return super().evaluate(state, split, config,
                                _Scaled(model, state.get("temperature", 1.0)))

    def after_training(self, state, config, model):
        losses = {t: float(self.evaluate({**state, "temperature": t}, "valid", config,
                                         model)["loss"])
                  for t in (0.1, 0.3, 3.0, 10.0)}
        return {**state, "temperature": min(losses, key=losses.get)}


class _CalibratedPlugin:
    @recurrent.hookimpl
    def register_tasks(self, register):
        register(Calibrated())


def test_an_ended_resume_of_a_task_without_training_state_gives_the_finished_figure(
        tmp_path):
    with train_toys.registered(), registered_plugin(_CalibratedPlugin(), "test-calibrated"):
        run = tmp_path / "run"
        out = ok(invoke("train", "toy-sign-calibrated", "--epochs", 1, "--quiet",
                        "--out", run))
        done, figure = out.split(", clipped")[0].split(": ", 1)
        assert "with the choices made after training" in figure, out
        evaluated = json.loads(ok(invoke("eval", run, "--split", "valid", "--json")))
        assert figure.startswith(f"best valid loss "
                                 f"{format_value(evaluated['metrics']['loss'])} ")
        again = ok(invoke("train", "--resume", run))
        steps = done.removeprefix("done after ")
        assert f"after {steps} ({figure}); nothing written" in again, again
