"""Hyperparameter search: an Optuna study asks for trials, populations train them.

``run_search(plan, out_dir)`` opens (or joins) the plan's study, then repeats:
ask Optuna for a batch of trials (ask-and-tell; the grid, random and TPE
samplers and the median and successive-halving pruners are Optuna's own),
group the trial plans by structure (``engine.searching.space.structure_key``), train each
group as one population (``engine.searching.population``, vmapped or in turn, whichever
its timing favours), write each trial's plan and history, and tell Optuna the
results.  Several processes may run the same search: they share the study
through its storage (a journal file by default, a database URL where given)
and stop when the study holds ``search.n_trials`` finished trials; a trial
that one of them asks for past that budget is told FAIL at once, so no trial
runs twice and none is lost.  Workers ask for a few trials at a time, so each
gets work; a worker that dies leaves trials whose heartbeat stops, and the
others (or the worker, restarted) fail and retry them (``engine.searching.workers``).
The leaderboard, best plan and picture are ``engine.searching.search_report``'s.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from advisor.contract.errors import InputError
from advisor.contract.io import write_model
from advisor.contract.loading import resolve_plan_paths
from advisor.contract.plan_paths import get_path
from advisor.contract.schemas import History, HistorySource, ModeTiming, Plan, ScalePlan, SearchPlan
from engine.datasets.checks import check_plan
from engine.optim.losses import build_loss
from engine.outputs.progress import BarFactory, bar_factory
from engine.searching import space as spaces
from engine.searching import workers
from engine.searching.search_report import RUN, SURPLUS, write_report

TRIALS_DIR = "trials"
JOURNAL = "study.journal"


def trial_dir(out_dir: Path, number: int) -> Path:
    """Where trial ``number`` keeps its plan and history."""
    return out_dir / TRIALS_DIR / f"{number:04d}"


# ----------------------------------------------------------------------------- Optuna pieces


def open_storage(
    storage: str | None, out_dir: Path, heartbeat_timeout: float = workers.HEARTBEAT_TIMEOUT
):
    """The study's storage: a journal file (default ``out_dir/study.journal``) or a database URL
    (with Optuna's heartbeat on, so a dead worker's trials are failed and retried).

    Raises:
        InputError: the storage cannot be opened (one line naming it and why).
    """
    target = storage or str(out_dir / JOURNAL)
    try:
        if "://" in target:
            with warnings.catch_warnings():  # the heartbeat arguments are "experimental"
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    target, **workers.rdb_heartbeat(heartbeat_timeout)
                )
        path = Path(target)
        if path.is_dir():
            raise InputError(
                f"--storage: {target} is a folder; expected a journal file path or a database URL"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - drivers raise anything; the user needs one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else err.__class__.__name__
        raise InputError(
            f"--storage: cannot open {target!r} ({first}); expected a writable journal file "
            "path or a database URL such as sqlite:///search.db"
        ) from None


class AskTellGridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler for ask-and-tell: the search stops at the grid's size itself,
    so the sampler's own ``study.stop()`` (valid only inside ``optimize``) is skipped."""

    def after_trial(self, study, trial, state, values) -> None:
        del study, trial, state, values


def make_sampler(search: SearchPlan, seed: int):
    """Optuna's sampler for the method: GridSampler, RandomSampler or TPESampler."""
    if search.method == "grid":
        return AskTellGridSampler(spaces.grid_values(search.space), seed=seed)
    if search.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: trials asked for while others of the batch still run count as
    # likely-bad, so one batch spreads out instead of crowding one spot
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def make_pruner(search: SearchPlan, epochs: int):
    """Optuna's pruner for ``search.pruner``, stepping once per epoch."""

    if search.pruner == "median":
        # no verdict before 5 finished trials or in the first quarter of the epochs
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(1, epochs // 4))
    if search.pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=max(1, epochs // 8), reduction_factor=3
        )
    return optuna.pruners.NopPruner()


def space_fingerprint(plan: Plan) -> str:
    """A hash of what the study searches, so a worker with another plan cannot join it."""
    search = plan.search.model_dump(mode="json")
    return hashlib.sha256(json.dumps(search, sort_keys=True).encode()).hexdigest()[:16]


def open_study(plan: Plan, storage, study_name: str, worker: str | None = None):
    """Create or join the study; InputError when the named study searches something else.

    The sampler's seed is ``workers.worker_seed(plan.seed, worker)``; a worker without a
    name is named by its process (``workers.identity``) unless it is the one that creates
    the study, so workers started by hand sample apart and a lone search stays reproducible.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = plan.search
    epochs = search.epochs_per_trial or plan.epochs
    pruner = make_pruner(search, epochs)
    try:
        study = optuna.create_study(
            storage=storage,
            sampler=make_sampler(search, workers.worker_seed(plan.seed, worker)),
            pruner=pruner,
            study_name=study_name,
            direction=search.direction,
        )
    except optuna.exceptions.DuplicatedStudyError:
        joiner = worker or workers.identity()
        study = optuna.load_study(
            storage=storage,
            sampler=make_sampler(search, workers.worker_seed(plan.seed, joiner)),
            pruner=pruner,
            study_name=study_name,
        )
    fingerprint = space_fingerprint(plan)
    stored = study.user_attrs.get("space")
    if stored is None:
        study.set_user_attr("space", fingerprint)
        study.set_user_attr("search", search.model_dump(mode="json"))
    elif stored != fingerprint:
        raise InputError(
            f"--study-name: study {study_name!r} in this storage searches another space; "
            "use the same plan as the other workers, or another study name"
        )
    return study


def budget(plan: Plan) -> int:
    """Trials the study runs: n_trials, at most the grid's size."""
    search = plan.search
    if search.method == "grid":
        return min(search.n_trials, spaces.grid_size(search.space))
    return search.n_trials


# Seconds between looks at the study while other workers' trials run.
POLL = 1.0
# Trials one worker asks for at once, at most: a vmapped population this wide already
# fills a GPU, and a quarter of the budget per ask leaves trials for other workers.
DEFAULT_BATCH = 64


def default_batch(plan: Plan) -> int:
    """Trials asked for at once: a quarter of the budget (at least 2, at most
    ``DEFAULT_BATCH``), so every worker of a shared study gets trials (a batch of the whole
    budget left the others idle) and TPE learns between batches."""
    return min(budget(plan), DEFAULT_BATCH, max(2, math.ceil(budget(plan) / 4)))


# ----------------------------------------------------------------------------- the search loop


class Searcher:
    """One process's part of a search: ask, train by structure, write, tell."""

    def __init__(
        self,
        plan: Plan,
        out_dir: Path,
        base_dir: Path,
        device,
        mode: str | None,
        batch: int | None,
        heartbeat_timeout: float = workers.HEARTBEAT_TIMEOUT,
    ):
        self.plan, self.out_dir, self.base_dir, self.device = plan, out_dir, base_dir, device
        self.timeout = heartbeat_timeout
        self.stop = workers.StopOnInterrupt()  # entered while ``run`` runs
        from engine.runtime.sharding import devices_of

        # a vmapped population's trials are split over these (plan.scale.devices; None = all)
        self.trial_devices = devices_of(device.platform, (plan.scale or ScalePlan()).devices)
        self.space = spaces.check_space(plan)
        self.forced = None if mode in (None, "auto") else mode
        self.batch = batch or default_batch(plan)
        self.epochs = plan.search.epochs_per_trial
        self.datasets: dict[str, object] = {}
        self.populations: dict[str, object] = {}
        self.modes: dict[str, ModeTiming] = {}
        self.ran = 0
        self.warnings: list[str] = []

    def trial_plans(self, trials) -> list[Plan]:
        return [
            spaces.trial_plan(
                self.plan,
                {p: spaces.decode(v, self.space[p]) for p, v in t.params.items()},
                self.epochs,
            )
            for t in trials
        ]

    def _population(self, plans: list[Plan]):
        from engine.datasets.data import load_data
        from engine.searching.population import Population

        key = spaces.structure_key(plans[0])
        pop = self.populations.get(key)
        if pop is None:
            data_key = plans[0].data.model_dump_json()
            if data_key not in self.datasets:
                self.datasets[data_key] = load_data(plans[0], self.base_dir)
            pop = Population(
                plans,
                list(self.space),
                self.datasets[data_key],
                self.device,
                self.base_dir,
                trial_devices=self.trial_devices,
            )
            self.warnings += [str(w) for w in pop.warnings]
            self.populations[key] = pop
        else:
            pop.assign(plans)
        return pop

    def run(self, study, n_budget: int, on_trial: Callable[[int, float | None], None]) -> None:
        """Ask, train and tell until the study holds ``n_budget`` finished trials and none
        runs: while other workers' trials run, wait, failing and retrying any that go stale."""
        heartbeat = workers.Heartbeat(study._storage, self.timeout)
        try:
            with workers.StopOnInterrupt() as self.stop:
                self._loop(study, n_budget, on_trial, heartbeat)
        finally:
            heartbeat.close()

    def _loop(self, study, n_budget: int, on_trial, heartbeat) -> None:
        while True:
            self.stop.check()
            for number in workers.fail_stale(study, self.timeout, heartbeat.trial_ids):
                self.warnings.append(
                    f"trial {number}: no heartbeat for {self.timeout:g} s (its worker "
                    "stopped); marked failed and queued again with the same values"
                )
            trials = study.get_trials(deepcopy=False)
            waiting = sum(t.state == TrialState.WAITING for t in trials)
            wanted = min(self.batch, max(0, n_budget - counted_trials(trials)) + waiting)
            if wanted == 0:
                if not any(t.state == TrialState.RUNNING for t in trials):
                    return
                time.sleep(POLL)  # other workers' trials: done or stale soon
                continue
            asked = []
            try:
                with warnings.catch_warnings():  # we beat for asked trials ourselves
                    warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
                    for _ in range(wanted):
                        asked.append(study.ask(spaces.distributions(self.space)))
                        heartbeat.watch(asked[-1:])
                self._train_asked(study, asked, n_budget, on_trial)
            except BaseException:  # an error or Ctrl-C: others may run these trials now
                heartbeat.forget(asked)
                workers.release(study, asked)
                raise
            heartbeat.forget(asked)

    def _train_asked(self, study, asked, n_budget: int, on_trial) -> None:
        ranks = _ranks(study.get_trials(deepcopy=False))
        trials = []
        for trial in asked:
            if ranks.get(trial.number, n_budget + 1) > n_budget:  # others took the last places
                trial.set_user_attr(SURPLUS, True)
                study.tell(trial, state=TrialState.FAIL)
            else:
                trials.append(trial)
        plans = self.trial_plans(trials)
        groups: dict[str, list[int]] = {}
        for i, plan in enumerate(plans):
            groups.setdefault(spaces.structure_key(plan), []).append(i)
        for members in groups.values():
            self._train_group(
                study, [trials[i] for i in members], [plans[i] for i in members], on_trial
            )

    def _train_group(self, study, trials, plans, on_trial) -> None:
        from engine.searching.trials import train_trials

        pop = self._population(plans)
        choice = pop.choose_mode(len(plans), self.forced)
        self._note_mode(plans[0], choice)
        metric, prunes = self.plan.search.metric, self.plan.search.pruner != "none"

        def on_epoch(member: int, epoch: int, values: dict) -> bool:
            self.stop.check()  # Ctrl-C: stop between epochs, then hand the trials back
            value = values.get(metric)
            if not prunes or value is None or not math.isfinite(value):
                return False
            try:
                trials[member].report(value, epoch)
            except UpdateFinishedTrialError:  # failed as stale by another worker: stop it
                return True
            return trials[member].should_prune()

        started = time.perf_counter()
        outcomes = train_trials(pop, range(len(plans)), choice.mode, on_epoch)
        seconds = (time.perf_counter() - started) / len(plans)
        for trial, outcome in zip(trials, outcomes, strict=True):
            value = self._finish(study, trial, outcome, choice.mode, seconds)
            self.ran += 1
            on_trial(trial.number, value)

    def _finish(self, study, trial, outcome, mode: str, seconds: float) -> float | None:
        """Write the trial's plan and history, record how it went, tell Optuna."""
        folder = trial_dir(self.out_dir, trial.number)
        folder.mkdir(parents=True, exist_ok=True)
        result = outcome.result
        history = History(
            source=HistorySource(format="native", path=str(folder / "history.json")),
            epochs=result.epochs,
            series=result.series,
            task=outcome.plan.task,
            n_classes=outcome.plan.n_classes,
        )
        write_model(folder / "plan.json", outcome.plan)
        write_model(folder / "history.json", history)
        try:
            return self._tell(study, trial, outcome, mode, seconds, folder)
        except (UpdateFinishedTrialError, ValueError):
            if study._storage.get_trial(trial._trial_id).state != TrialState.FAIL:
                raise
            # another worker saw no heartbeat and failed it: its retry counts instead
            self.warnings.append(
                f"trial {trial.number}: failed by another worker (no heartbeat for "
                f"{self.timeout:g} s) before it finished here; its retry counts instead"
            )
            return None

    def _tell(self, study, trial, outcome, mode: str, seconds: float, folder: Path):
        """Record how the trial ran and tell Optuna its value (None when pruned)."""
        result = outcome.result
        # one attribute, one storage write: how the trial ran, for the leaderboard
        trial.set_user_attr(
            RUN,
            {
                "status": outcome.status,
                "final_epoch": outcome.final_epoch,
                "epochs": len(result.epochs),
                "stopped": result.stopped_reason,
                "mode": mode,
                "seconds": round(seconds, 3),
                "worker": workers.identity(),
                "device": outcome.device,
                "history": str((folder / "history.json").relative_to(self.out_dir)),
            },
        )
        if outcome.status == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
            return None
        value = outcome.value(self.plan.search.metric)
        if outcome.status == "diverged" or value is None or not math.isfinite(value):
            # the worst value there is, so the sampler learns to keep away from here
            value = math.inf if self.plan.search.direction == "minimize" else -math.inf
        study.tell(trial, value)
        return value

    def _note_mode(self, plan: Plan, choice) -> None:
        name = describe_structure(plan, self.space)
        known = self.modes.get(name)
        trials = choice.k + (known.trials if known else 0)
        speedup = (
            choice.speedup if choice.speedup is not None else (known.speedup if known else None)
        )
        expected = {}
        if choice.measured:  # what decided the mode: each program's compile plus its steps
            expected = {
                "expected_population_s": choice.expected_s("population"),
                "expected_sequential_s": choice.expected_s("sequential"),
            }
        elif known:
            expected = {
                "expected_population_s": known.expected_population_s,
                "expected_sequential_s": known.expected_sequential_s,
            }
        self.modes[name] = ModeTiming(
            structure=name, trials=trials, mode=choice.mode, speedup=speedup, **expected
        )


def _counts(trial) -> bool:
    """Whether a trial uses the budget: failed ones (surplus asks, trials whose worker
    died, retried as new trials) do not."""
    return trial.state != TrialState.FAIL and not trial.user_attrs.get(SURPLUS)


def counted_trials(trials) -> int:
    """Trials that use the budget."""
    return sum(1 for t in trials if _counts(t))


def _ranks(trials) -> dict[int, int]:
    """Trial number -> its place in the budget (1 = first), counting trials that use it."""
    ranks, place = {}, 0
    for trial in sorted(trials, key=lambda t: t.number):
        place += _counts(trial)
        ranks[trial.number] = place
    return ranks


def describe_structure(plan: Plan, space: dict) -> str:
    """A short name for a trial's structure: the architecture and the structural searched values."""
    structural = [p for p in space if not spaces.is_per_trial(p, plan)]
    parts = [plan.model.arch] + [
        f"{p.rsplit('.', 1)[-1]}={get_path(plan.model_dump(), p)}" for p in structural
    ]
    return " ".join(parts)


def run_search(
    plan: Plan,
    out_dir: str | Path,
    base_dir: str | Path = ".",
    storage: str | None = None,
    study_name: str | None = None,
    device: str | None = None,
    mode: str | None = None,
    batch: int | None = None,
    worker: str | None = None,
    heartbeat_timeout: float = workers.HEARTBEAT_TIMEOUT,
    progress: bool | None | BarFactory = None,
    report: Callable[[str], None] = print,
    write_summary: bool = True,
    priorities: Mapping[str, int] | None = None,
):
    """Run (or join) the plan's search; returns the SearchResult once the study is done.

    Args:
        out_dir: the search directory (trials/, leaderboard.csv, best_plan.json, search.png).
        base_dir: folder that relative data paths and model.base are relative to.
        storage: a journal file path or a database URL (default out_dir/study.journal).
        study_name: the study to create or join (default: the plan's name).
        device: auto, cpu, gpu or tpu (default: the plan's).
        mode: "population", "sequential", or None/"auto" to time both.
        batch: trials asked for at once (default ``default_batch``).
        worker: this worker's name, which seeds its sampler (``workers.worker_seed``);
            None = the process's host:pid, or the plan's seed when this run creates the study.
        heartbeat_timeout: seconds without a heartbeat after which another worker's
            running trial is failed and queued again.
        progress: show a progress bar (None = only when stdout is a terminal), or the
            bar factory to draw it with (``engine.outputs.progress``).
        report: receives warnings, one line each.
        write_summary: write the leaderboard, best plan and picture at the end.
        priorities: rule id -> priority, for the rules best_plan.json says a value overrode.

    Raises:
        InputError: a bad space, metric or storage; nothing is trained.
    """
    from engine.runtime.device import select_device

    out_dir = Path(out_dir)
    plan = resolve_plan_paths(plan, base_dir)  # best_plan.json and trial plans run from anywhere
    spaces.check_space(plan)  # bad input fails before a storage or a device is touched
    check_plan(plan)  # so does a plan no trial could run (a loss that does not fit, ...)
    if plan.data.source is None:
        raise InputError(
            "data.source: the plan names no data, so no trial can run; "
            "add data.source (a builtin dataset, an .npz, a CSV or an image folder)"
        )
    if plan.task != "gan":  # ... or a loss parameter the loss does not take
        build_loss(plan.loss.model_copy(update={"class_weights": None}))
    store = open_storage(storage, out_dir, heartbeat_timeout)
    name = study_name or plan.name or "search"
    study = open_study(plan, store, name, worker)
    chosen = select_device(device or plan.device)
    searcher = Searcher(plan, out_dir, Path(base_dir), chosen, mode, batch, heartbeat_timeout)
    n_budget = budget(plan)
    factory = bar_factory(progress)
    bar = (
        _TrialBar(factory, n_budget, plan.search, counted_trials(study.get_trials(deepcopy=False)))
        if factory
        else None
    )
    started = time.perf_counter()
    try:
        searcher.run(study, n_budget, bar.update if bar else (lambda number, value: None))
    finally:
        if bar:
            bar.close()
    for line in dict.fromkeys(searcher.warnings):
        report(line)
    hours = (time.perf_counter() - started) / 3600
    rate = searcher.ran / hours if searcher.ran and hours > 0 else None
    storage_text = storage or str(out_dir / JOURNAL)
    return write_report(
        study,
        plan,
        out_dir,
        storage_text,
        list(searcher.modes.values()),
        rate,
        write_files=write_summary,
        priorities=priorities,
    )


class _TrialBar:
    """Trials done over the budget, with the best value so far, on a bar the factory draws."""

    def __init__(self, factory: BarFactory, total: int, search: SearchPlan, done: int):
        self.metric, self.sign, self.best = (
            search.metric,
            1.0 if search.direction == "minimize" else -1.0,
            None,
        )
        self.done = done
        self.bar = factory("trials", total, done)

    def update(self, number: int, value: float | None) -> None:
        if (
            value is not None
            and math.isfinite(value)
            and (self.best is None or self.sign * value < self.sign * self.best[1])
        ):
            self.best = (number, value)
        text = f"best {self.metric} {self.best[1]:.4g} (trial {self.best[0]})" if self.best else ""
        self.done += 1
        self.bar.update(self.done, text)

    def close(self) -> None:
        self.bar.close()
