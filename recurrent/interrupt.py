"""Ctrl-C during training: the first one asks the loop to stop at the next window
boundary (it then saves a checkpoint); a second one raises KeyboardInterrupt at once,
leaving the previous checkpoint.

Handlers nest (a run of parts trained in turn holds one while each part's trainer holds
its own): an inner one starts out requested if the enclosing one already was (a Ctrl-C
while a part was being set up stops that part at once), and on exit passes a request of
its own out (a Ctrl-C while a part was finishing stops the parts after it)."""
from __future__ import annotations

import signal
import threading


class Interrupt:
    """Context manager installing the SIGINT handler (main thread only; elsewhere Python
    delivers no signals) and restoring the previous one on exit. ``requested`` turns True
    at the first Ctrl-C."""

    def __init__(self):
        self.requested = False
        self._previous = None
        self._outer = None  # the enclosing Interrupt whose handler this one replaced

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            outer = getattr(self._previous, "__self__", None)
            self._outer = outer if isinstance(outer, Interrupt) else None
            if self._outer is not None and self._outer.requested:
                self.requested = True
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        if self._outer is not None and self.requested:
            self._outer.requested = True
        return False


def requested() -> bool:
    """Whether the innermost Interrupt installed now has seen a Ctrl-C: for long work a
    trainer does while it is set up (language-model pretraining), which has no step of
    the run's own to stop at."""
    owner = getattr(signal.getsignal(signal.SIGINT), "__self__", None)
    return isinstance(owner, Interrupt) and owner.requested
