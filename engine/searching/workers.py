"""Search workers that survive one another: heartbeats, stale trials, one sampler seed each.

Each worker keeps its running trials alive with a heartbeat from a background
thread (``Heartbeat``); before it asks for work it fails every running trial
whose heartbeat is older than the timeout (``fail_stale``) and enqueues a retry
with the same parameters, so a killed worker's trials are run again by whoever
is left (or by the worker once restarted) and never count as done.  A database
storage uses Optuna's own heartbeat (``RDBStorage(heartbeat_interval,
grace_period)`` and ``fail_stale_trials``); a journal file keeps the same idea
in a trial attribute, because Optuna's JournalStorage has no heartbeat.
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import threading
import time
import warnings

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

# Seconds without a heartbeat after which a running trial counts as abandoned.  Generous,
# because a trial's first epoch includes its compilation; the beat comes from a thread.
HEARTBEAT_TIMEOUT = 120.0
# A trial that loses its worker this many times is not retried again (it may be the cause).
MAX_RETRY = 3
# The journal's trial attribute holding the time of the last heartbeat (seconds since the epoch).
BEAT = "heartbeat"

# the callback's name since Optuna 4.9; the older name still works until 6.0
_RETRY = (
    getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    or optuna.storages.RetryFailedTrialCallback
)


def retry_callback():
    """Optuna's callback that enqueues a failed trial again with the same parameters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _RETRY(max_retry=MAX_RETRY)


def beat_interval(timeout: float) -> int:
    """Whole seconds between heartbeats: four beats per timeout, at least one second apart."""
    return max(1, int(timeout // 4))


def rdb_heartbeat(timeout: float) -> dict:
    """The RDBStorage arguments that turn Optuna's heartbeat on for ``timeout`` seconds."""
    return {
        "heartbeat_interval": beat_interval(timeout),
        "grace_period": max(1, math.ceil(timeout)),
        "heartbeat_stale_trial_callback"
        if _RETRY.__name__ == "RetryHeartbeatStaleTrialCallback"
        else "failed_trial_callback": retry_callback(),
    }


def identity() -> str:
    """This process, as other workers and the leaderboard name it: host:pid."""
    return f"{os.uname().nodename}:{os.getpid()}"


def worker_seed(plan_seed: int, worker: str | None) -> int:
    """The sampler seed of a worker: the plan's seed for the study's first worker (``None``),
    else a number derived from the plan's seed and the worker's name, so workers sample apart."""
    if worker is None:
        return plan_seed
    digest = hashlib.sha256(f"{plan_seed}/{worker}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _is_rdb(storage) -> bool:
    return isinstance(storage, optuna.storages.RDBStorage)


class Heartbeat:
    """A thread that tells the storage, every ``interval`` seconds, that these trials still run."""

    def __init__(self, storage, timeout: float):
        self.storage, self.interval = storage, beat_interval(timeout)
        self.trial_ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def watch(self, trials) -> None:
        """Beat for ``trials`` (Optuna trials) from now on, starting at once."""
        with self._lock:
            self.trial_ids |= {t._trial_id for t in trials}
        self.beat()

    def forget(self, trials) -> None:
        with self._lock:
            self.trial_ids -= {t._trial_id for t in trials}

    def beat(self) -> None:
        with self._lock:
            ids = sorted(self.trial_ids)
        for trial_id in ids:
            try:
                if _is_rdb(self.storage):
                    self.storage.record_heartbeat(trial_id)
                else:
                    self.storage.set_trial_system_attr(trial_id, BEAT, time.time())
            except (UpdateFinishedTrialError, KeyError):  # told, or failed by another worker
                with self._lock:
                    self.trial_ids.discard(trial_id)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def fail_stale(study, timeout: float, own: set[int] = frozenset()) -> list[int]:
    """Fail the running trials whose heartbeat is older than ``timeout`` seconds and enqueue
    each again; returns the numbers failed here.  ``own``: trial ids this process runs."""
    if _is_rdb(study._storage):
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # retries through the storage's callback
        after = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        return sorted(t.number for t in after if t.number in before)
    storage, now, failed = study._storage, time.time(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial._trial_id in own:
            continue
        started = trial.datetime_start.timestamp() if trial.datetime_start else now
        # a retry inherits its original's attributes: a beat from before its start is not its own
        last = max(started, float(trial.system_attrs.get(BEAT, 0.0)))
        if now - last <= timeout:
            continue
        try:
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:  # another worker failed (or its worker told) it first
            continue
        retry_callback()(study, storage.get_trial(trial._trial_id))
        failed.append(trial.number)
    return failed


def release(study, trials) -> list[int]:
    """Fail this process's ``trials`` that still run and enqueue each again, at once (an
    error or Ctrl-C stops the worker): a restarted worker need not wait for the timeout."""
    storage, released = study._storage, []
    for trial in trials:
        frozen = storage.get_trial(trial._trial_id)
        if frozen.state != TrialState.RUNNING:
            continue
        try:
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue
        retry_callback()(study, storage.get_trial(trial._trial_id))
        released.append(trial.number)
    return released


class StopOnInterrupt:
    """Ctrl-C asks the worker to stop at its next epoch or ask, where ``check`` raises
    KeyboardInterrupt from ordinary code (raised from the signal handler it could land in
    a garbage-collector callback, which swallows it); a second Ctrl-C stops at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self) -> StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, number, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def check(self) -> None:
        """Raise KeyboardInterrupt once Ctrl-C was pressed."""
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
