"""Ctrl-C during training: the first one asks the loop to stop at the next window
boundary (it then saves a checkpoint); a second one raises KeyboardInterrupt at once,
leaving the previous checkpoint."""
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

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
