"""What a training run prints: a tqdm bar on a terminal, plain log lines otherwise,
nothing with --quiet; and the evaluation lines (validation metrics beside the task's
baselines)."""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from .figures import format_value


def warn_once(note: str) -> None:
    """Print ``note`` on stderr (shown even with --quiet: aside), once per command: a run
    that prepares its task more than once (candidates, recurrent/candidates.py) warns
    once. Outside a command (library use) every call prints."""
    import click
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        told = ctx.meta.setdefault("recurrent.told", set())  # shared by nested contexts
        if note in told:
            return
        told.add(note)
    aside(note)


def aside(line: str) -> None:
    """Print ``line``, which tells a person something the results do not need (a note, the
    stderr copy of an error answered on stdout), on stderr. A stderr that cannot be
    written (2>/dev/full) loses the line and the work goes on: the results are elsewhere
    (stdout, the run's files)."""
    import click
    try:
        click.echo(line, err=True)
    except OSError:
        pass


def duration(seconds) -> str:
    """"1h02m" or "3m05s"."""
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def share_text(fraction) -> str:
    """A share of steps as a whole percentage ("clipped 12% of steps"), never rounded to
    "0%" when some steps count nor to "100%" when some do not: 1 clipped step in 400 reads
    "<1%", 399 in 400 ">99%"."""
    fraction = float(fraction)
    if fraction <= 0 or fraction >= 1:
        return f"{min(max(fraction, 0.0), 1.0):.0%}"
    text = f"{fraction:.0%}"
    return {"0%": "<1%", "100%": ">99%"}.get(text, text)


def headline_keys(metrics: dict) -> list:
    """The metrics worth a log line: floats, not per-class ("precision/fresh") entries;
    "loss" first. The rest (counts, matrices, per-class) stays in metrics.jsonl."""
    keys = [k for k, v in metrics.items()
            if isinstance(v, (float, np.floating)) and "/" not in k]
    return sorted(keys, key=lambda k: k != "loss")


def format_metrics(metrics: dict, keys) -> str:
    """"loss 0.6931  accuracy 0.5000" for the numeric ``keys`` of ``metrics``, huge values
    in exponent form as `recurrent eval` prints them (report.format_value)."""
    return "  ".join(f"{k} {format_value(float(metrics[k]))}" for k in keys
                     if isinstance(metrics.get(k), (int, float, np.number)))


def _terminal_columns(stream) -> int:
    """The width of the terminal ``stream`` writes to, 0 when it is not a terminal or one
    that has no width (a pseudo-terminal no one sized: `script` started without a
    terminal, some containers and CI runners), where a progress bar cut to that width
    shows nothing, or when TERM=dumb (Emacs' shell and compilation buffers, editors'
    output panes), which shows each of the bar's carriage-return redraws as a line of its
    own: such a terminal gets the log lines."""
    if os.environ.get("TERM") == "dumb":
        return 0
    try:
        return os.get_terminal_size(stream.fileno()).columns if stream.isatty() else 0
    except (OSError, ValueError, AttributeError):
        return 0


class Progress:
    """Progress of one fit(): ``update`` after every step, ``write`` for other lines."""

    def __init__(self, total, initial, unit, quiet, log_every, echo):
        self.unit, self.quiet, self.log_every, self.echo = unit, quiet, log_every, echo
        self.total = total
        self.bar = None
        if not quiet and _terminal_columns(sys.stderr) > 0:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=initial, unit="step",
                            leave=False)
        self._mark_time, self._mark_items, self._items = time.perf_counter(), 0, 0
        self._start_time, self._start_step = self._mark_time, initial

    def update(self, step, epoch, loss, items, lr, grad_norm):
        self._items += items
        if self.bar is not None:
            self.bar.update(1)
            if step % 10 == 0 or step == self.total:
                rate = self._rate()
                self.bar.set_postfix_str(f"loss {format_value(float(loss))} "
                                         f"{rate:,.0f} {self.unit}/s")
        elif not self.quiet and self.log_every and step % self.log_every == 0:
            rate = self._rate()
            elapsed = time.perf_counter() - self._start_time
            done = step - self._start_step
            eta = ""
            if self.total and done > 0:
                eta = f"  ETA {duration(elapsed / done * max(0, self.total - step))}"
            self.echo(f"step {step}{'/' + str(self.total) if self.total else ''}  "
                      f"epoch {epoch + 1}  loss {format_value(float(loss))}  "
                      f"grad-norm {grad_norm:.3g}  "
                      f"lr {lr:.3g}  {rate:,.0f} {self.unit}/s{eta}")

    def _rate(self):
        now = time.perf_counter()
        rate = (self._items - self._mark_items) / max(now - self._mark_time, 1e-9)
        self._mark_time, self._mark_items = now, self._items
        return rate

    def restart_rate(self):
        """Throughput counts training only: restart the clock after an evaluation."""
        self._mark_time, self._mark_items = time.perf_counter(), self._items

    def write(self, line):
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(line)
        else:
            self.echo(line)

    def write_evaluation(self, step, metrics, baselines, best, train_loss, clipped_fraction):
        """The validation metrics of an evaluation at ``step``, then one line per baseline
        with the same metrics."""
        keys = headline_keys(metrics)
        line = f"eval step {step}  valid  {format_metrics(metrics, keys)}"
        line += "  *best" if best else ""
        if train_loss is not None:  # the loss since the last evaluation; the share of
            # clipped steps counts every step of the run, as the summary's does
            line += (f"  (train loss {format_value(float(train_loss))}, "
                     f"clipped {share_text(clipped_fraction)} of steps so far)")
        self.write(line)
        width = max([len(name) for name in (baselines or {})] + [0])
        for name, values in (baselines or {}).items():
            self.write(f"    baseline {name.ljust(width)}  {format_metrics(values, keys)}")

    def close(self):
        if self.bar is not None:
            self.bar.close()
