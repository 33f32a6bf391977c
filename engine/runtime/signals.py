"""SIGINT and SIGTERM during a run: note the signal, let the epoch finish, then stop cleanly.

``SignalGuard`` replaces both handlers while training runs (main thread only).
The first signal is only recorded; ``engine.training.fit`` checks it after each epoch,
the checkpoint callback saves, and the run raises ``engine.training.fit.Interrupted``
(exit 130 for SIGINT, 143 for SIGTERM, as a shell reports a process the
signal ended).  A second SIGINT is not waited on: it interrupts at once.
"""

from __future__ import annotations

import signal
import threading

EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


class SignalGuard:
    """Context manager: records SIGINT/SIGTERM instead of dying mid-epoch."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def pending(self) -> str | None:
        """The name of the signal received, or None."""
        return self.signal_name

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.signal_name == "SIGINT" and name == "SIGINT":
            raise KeyboardInterrupt  # the second Ctrl-C: stop now
        self.signal_name = self.signal_name or name

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
