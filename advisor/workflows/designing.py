"""``advisor.auto(data, target=..., budget=...)``: recommend, run, diagnose, revise, under a budget.

Round 1 runs the recommended plan (or a given one).  Each later round grows from
the best round so far: while its diagnosis has fixes not yet tried, the next
round runs the revised plan; once it has none (healthy, or its revision was
tried and did not win), the next round searches the plan's own search space
around it, narrowed by every problem the lineage found (``rules/auto/auto.toml``),
and runs the search's best plan, when the budget holds a search of enough trials;
otherwise it takes one step along one dimension from the best plan (learning rate
on a log scale first), inside the same narrowed space, kept whole as the round's
run.  The loop stops on the budget, on a perfect validation score, on rounds
without a new best, on a plateau, or when every step around the best was tried.
Every round is a normal run folder; the best round by validation score is scored
on the test split once, at the end.
``lineage.json`` is rewritten after every round, so ``resume=True`` continues.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from advisor.contract.errors import EngineError, InputError
from advisor.contract.io import load_model, write_model
from advisor.contract.schemas import (
    AutoBudget,
    AutoSpent,
    DataSource,
    Diagnosis,
    Lineage,
    LineageRound,
    Plan,
    PlanChange,
    Profile,
    PrunedDimension,
    RunResult,
    SearchParam,
)
from advisor.contract.vocabulary import ProblemName
from advisor.expert.revision import get_path, set_path
from advisor.expert.rules import builtin_rules_dir

LINEAGE = "lineage.json"
_NOT_TRAINING = (
    "explanations",
    "derived_facts",
    "output_dir",
    "device",
    "baselines",
    "search",
    "name",
)
_NOT_FOUND = {"healthy", "inconclusive"}


# ----------------------------------------------------------------------------- policy (data)


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    reason: str
    source: str


class Selection(_Entry):
    """Which validation series scores a round, for which tasks."""

    tasks: list[str]
    weighted: bool | None = None
    series: str
    direction: Literal["minimize", "maximize"]
    best_possible: float | None = None


class Stopping(_Entry):
    """When the loop stops, and how big a search round may be."""

    patience_rounds: int = Field(ge=1)
    plateau_rounds: int = Field(ge=1)
    plateau_relative: float = Field(ge=0)
    min_epochs: int = Field(ge=1)
    max_trials_per_search: int = Field(ge=1)
    min_trials_per_search: int = Field(ge=1)


class Step(_Entry):
    """One step along ``field`` from the best plan: a log-scale factor, a linear amount, or the
    neighbouring choice; ``first`` is the direction tried first."""

    field: str
    scale: Literal["log", "linear", "choice"]
    amount: float = Field(gt=0)
    first: Literal["up", "down"]


class Prune(_Entry):
    """After ``problems``, keep the search on the fixed side of ``field``'s current value."""

    problems: list[ProblemName]
    field: str
    keep: Literal["at_most", "at_least"]


class Findings(_Entry):
    """Which findings narrow the search: ``refuted_by_revision`` drops a finding whose own
    revision (the fixes for it, run from the round that found it) scored worse."""

    refuted_by_revision: bool


class Policy(BaseModel):
    """``rules/auto/auto.toml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    selection: list[Selection]
    stopping: Stopping
    findings: Findings
    prune: list[Prune] = []
    step: list[Step] = []


@lru_cache(maxsize=1)
def load_policy() -> Policy:
    """The auto policy shipped beside the rules."""
    import tomllib

    return load_model(
        Policy, tomllib.loads((builtin_rules_dir() / "auto" / "auto.toml").read_text())
    )


def selection_for(plan: Plan, policy: Policy) -> Selection:
    """The first selection entry that fits the plan's task, weighting and recorded series."""
    from engine.searching.space import recorded_series

    recorded = recorded_series(plan)
    weighted = plan.loss.class_weights is not None
    for entry in policy.selection:
        if (
            plan.task in entry.tasks
            and entry.weighted in (None, weighted)
            and entry.series in recorded
        ):
            return entry
    raise InputError(f"task {plan.task!r}: no selection entry in rules/auto/auto.toml scores it")


# ----------------------------------------------------------------------------- budget


_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$"
)


def parse_duration(text: str) -> float:
    """Seconds in ``20m``, ``90s``, ``1h30m``.

    Raises:
        InputError: naming --budget, for text without a unit or with an unknown one.
    """
    found = _DURATION.match(text or "")
    if not found or not any(found.groups()):
        raise InputError(f"--budget: {text!r} is not a duration; expected e.g. 20m, 90s or 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in found.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise InputError(f"--budget: {text!r} is no time at all; expected e.g. 20m")
    return total


def _budget(budget, runs, examples) -> AutoBudget:
    seconds = parse_duration(budget) if isinstance(budget, str) else budget
    if seconds is None and runs is None and examples is None:
        seconds = 20 * 60.0
    return AutoBudget(seconds=seconds, runs=runs, examples=examples)


# ----------------------------------------------------------------------------- the loop


def auto(
    data: str | DataSource,
    target: str | None = None,
    budget: str | float | None = None,
    *,
    runs: int | None = None,
    examples: int | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    start: Plan | dict | str | Path | None = None,
    test_fraction: float = 0.2,
    device: str | None = None,
    progress: bool | None = False,
    report: Callable[[str], None] | None = None,
) -> Lineage:
    """Design a model for ``data``: rounds of run, diagnose and revise (or search), under a budget.

    Args:
        data: builtin:NAME, a .npz, a .csv (with ``target``) or an image folder, or a DataSource.
        target: the CSV column to predict.
        budget: wall-clock limit, ``"20m"`` or seconds (default 20 minutes when no limit is given).
        runs: most trainings (a search trial counts one).
        examples: most examples trained, summed over epochs.
        out_dir: the lineage folder (default auto/<data name>); round-NN/ are its run folders.
        resume: continue the lineage in ``out_dir`` from its last finished round.
        start: run this plan in round 1 instead of the recommended one.
        test_fraction: share of the data held out as the test split (0 = none).
        device: auto, cpu, gpu or tpu (default: the plan's).
        progress: the runs' per-epoch progress bars.
        report: receives one line per round (and pre-flight warnings, indented).

    Returns:
        The Lineage, also in ``out_dir/lineage.json`` with lineage.md and lineage.png.

    Raises:
        InputError: bad data, budget or folder (an earlier lineage there without ``resume``).
    """
    from advisor.workflows.auto_report import progress_line, write_reports

    say = report or (lambda line: None)
    source, label = _source(data, target)
    out = Path(out_dir or default_out(label))
    given = (
        None
        if budget is None and runs is None and examples is None
        else _budget(budget, runs, examples)
    )
    lineage = _open(out, resume, label, target, given)
    profile = _profile(source, test_fraction)
    pending = None
    if lineage is None:
        first = _first_plan(profile, start, test_fraction)
        chosen = selection_for(first, load_policy())
        lineage = Lineage(
            data=label,
            target=target,
            metric=chosen.series,
            direction=chosen.direction,
            metric_rule=chosen.id,
            budget=given or _budget(None, None, None),
        )
        kind = "start" if start is not None else "recommended"
        pending = (kind, None, first, kind, [])
    elif lineage.stopped is not None:
        if given is None or not lineage.stopped.startswith("budget"):
            say(f"{out}: finished earlier ({lineage.stopped}); nothing to resume")
            return lineage
        # a larger budget continues a lineage that ran out; the test score is taken again at the end
        lineage = lineage.model_copy(update={"stopped": None, "test_metrics": {}})
    loop = _Loop(out, lineage, profile, device, progress, say)
    if pending is not None:
        fitted = loop.fit_budget(pending[2])
        pending = (*pending[:2], fitted, *pending[3:]) if fitted is not None else "budget spent"
    while True:
        step = pending or loop.next_step()
        pending = None
        if isinstance(step, str):
            loop.lineage = loop.lineage.model_copy(update={"stopped": step})
            break
        done = loop.run_round(*step)
        say(progress_line(done, loop.lineage))
        write_reports(out, loop.lineage, plot=False)
        stop = loop.stop_reason()
        if stop:
            loop.lineage = loop.lineage.model_copy(update={"stopped": stop})
            break
    lineage = loop.finish()
    write_reports(out, lineage)
    return lineage


def _source(data, target) -> tuple[DataSource, str]:
    from advisor.workflows.profiling import parse_source

    if isinstance(data, str):
        source = parse_source(data, target=target)
        if hasattr(source, "path"):  # rounds run from their own folders
            source = source.model_copy(update={"path": str(Path(source.path).resolve())})
        return source, data
    return data, data.model_dump_json(exclude_none=True)


def default_out(label: str) -> Path:
    """auto/<the data's name> when no folder is given."""
    stem = Path(label.removeprefix("builtin:")).stem if not label.startswith("{") else "data"
    return Path("auto") / (re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) or "data")


def _profile(source: DataSource, test_fraction: float) -> Profile:
    """The data's profile, with n_train what the rounds train on once the test split is out."""
    from advisor.workflows.profiling import profile_data

    if not 0 <= test_fraction < 0.8:
        raise InputError(f"--test-fraction: {test_fraction} is outside [0, 0.8)")
    profile = profile_data(source)
    total = profile.n_train + (profile.n_val or 0)
    n_train = max(1, profile.n_train - round(total * test_fraction))
    return profile.model_copy(update={"n_train": n_train})


def _first_plan(profile: Profile, start, test_fraction: float) -> Plan:
    from advisor.contract.loading import load_plan
    from advisor.expert.recommending import recommend

    plan = load_plan(start) if start is not None else recommend(profile)
    data = plan.data
    if data.test is None and test_fraction > 0 and data.test_fraction == 0:
        n_train = profile.n_train if start is None else plan.n_train
        data = data.model_copy(update={"test_fraction": test_fraction})
        plan = _with(plan, {"data": data.model_dump(), "n_train": n_train})
    return _with(plan, {"search": None})


def _with(plan: Plan, changes: dict[str, Any]) -> Plan:
    """``plan`` with top-level or dotted ``changes``, steps per epoch following the batch."""
    data = plan.model_dump(mode="json")
    for path, value in changes.items():
        set_path(data, path, value)
    data["steps_per_epoch"] = math.ceil(data["n_train"] / data["batch_size"])
    return Plan.model_validate(data)


def _open(out: Path, resume: bool, label: str, target, budget: AutoBudget | None) -> Lineage | None:
    path = out / LINEAGE
    if not resume:
        if path.exists():
            raise InputError(
                f"--out: {out} holds an earlier lineage ({LINEAGE}); "
                "pass --resume to continue it, or choose another folder"
            )
        return None
    if not path.exists():
        raise InputError(f"--resume: {path} does not exist; there is nothing to continue")
    lineage = load_model(Lineage, path)
    if lineage.data != label or lineage.target != target:
        raise InputError(
            f"--resume: {path} designs for {lineage.data!r} (target {lineage.target!r}), "
            f"not {label!r} (target {target!r})"
        )
    return lineage.model_copy(update={"budget": budget}) if budget is not None else lineage


def training_fields(plan: Plan) -> dict[str, Any]:
    """The plan as it trains: what a diff or a 'tried already' check compares."""
    data = plan.model_dump(mode="json", exclude=set(_NOT_TRAINING))
    data.pop("steps_per_epoch", None)
    return data


def plan_diff(old: Plan, new: Plan) -> list[PlanChange]:
    """Every leaf field the training differs in, dotted path, old and new value."""
    changes: list[PlanChange] = []

    def walk(a, b, prefix):
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{prefix}{key}.")
        elif a != b:
            changes.append(PlanChange(field=prefix.rstrip("."), old=a, new=b))

    walk(training_fields(old), training_fields(new), "")
    return changes


class _Loop:
    """The lineage so far, and how to take one more round."""

    def __init__(self, out: Path, lineage: Lineage, profile: Profile, device, progress, say):
        self.out, self.lineage, self.profile = out, lineage, profile
        self.device, self.progress, self.say = device, progress, say
        self.policy = load_policy()
        self.resumed_at = time.perf_counter() - lineage.spent.seconds

    # -- state read back from the round folders

    def plan_of(self, r: LineageRound) -> Plan:
        return load_model(Plan, Path(r.run_dir) / "plan.json")

    def best(self) -> LineageRound | None:
        scored = [r for r in self.lineage.rounds if r.score is not None and math.isfinite(r.score)]
        if not scored:
            return self.lineage.rounds[-1] if self.lineage.rounds else None
        sign = 1 if self.lineage.direction == "maximize" else -1
        return max(scored, key=lambda r: (sign * r.score, -r.round))

    def tried(self, plan: Plan, ignore: tuple[str, ...] = ()) -> bool:
        """Whether a round trained this plan already (``ignore``: fields a budget cut)."""

        def key(p: Plan) -> dict[str, Any]:
            return {k: v for k, v in training_fields(p).items() if k not in ignore}

        fields = key(plan)
        return any(key(self.plan_of(r)) == fields for r in self.lineage.rounds)

    def standing(self, r: LineageRound) -> list[str]:
        """The problems round ``r`` found that still narrow the search: all of them, less (per
        the findings entry) those a revision acted on and lost by: found in ``r`` and fixed by
        a revision from ``r`` that scored worse, or found again in ``r``, itself such a revision."""
        found = [p for p in r.problems if p not in _NOT_FOUND]
        if not self.policy.findings.refuted_by_revision:
            return found
        refuted = {
            name
            for q in self.lineage.rounds
            if q.kind == "revision" and (q.parent == r.round or q.round == r.round)
            for name in self._lost(q)
        }
        return [p for p in found if p not in refuted]

    def set_aside(self) -> list[str]:
        """Each finding that narrows nothing because a revision acted on it and lost, in words."""
        rule = self.policy.findings.id
        notes = []
        for r in self.lineage.rounds:
            kept = set(self.standing(r))
            for name in [p for p in r.problems if p not in _NOT_FOUND and p not in kept]:
                lost = [
                    q.round
                    for q in self.lineage.rounds
                    if q.kind == "revision"
                    and (q.parent == r.round or q.round == r.round)
                    and name in self._lost(q)
                ]
                how = (
                    "found again in that revision, which lost"
                    if lost[0] == r.round
                    else f"its revision, round {lost[0]}, lost"
                )
                notes.append(f"{name} in round {r.round}: {how} ({rule})")
        return notes

    def _lost(self, q: LineageRound) -> list[str]:
        """The problems revision ``q`` acted on, when it scored worse than its parent."""
        parent = self.lineage.rounds[q.parent - 1] if q.parent else None
        if parent is None or parent.score is None:
            return []
        sign = 1 if self.lineage.direction == "maximize" else -1
        if q.score is not None and sign * (q.score - parent.score) >= 0:
            return []
        return [q.cause, *(b.name for b in q.because)]

    # -- budget

    def remaining(self) -> tuple[float, float, float]:
        b, s = self.lineage.budget, self.lineage.spent
        seconds = b.seconds - (time.perf_counter() - self.resumed_at) if b.seconds else math.inf
        return (
            seconds,
            b.runs - s.runs if b.runs else math.inf,
            b.examples - s.examples if b.examples else math.inf,
        )

    def seconds_per_example(self) -> float:
        s = self.lineage.spent
        return s.seconds / s.examples if s.examples else 0.0

    def fit_budget(self, plan: Plan, at_least: int = 0) -> Plan | None:
        """``plan`` with its epochs cut to what the budget has left; None when that is below
        min_epochs, or below ``at_least`` (the epochs its parent trained: a shorter run could
        not show whether the change helped)."""
        seconds, runs, examples = self.remaining()
        if runs < 1:
            return None
        rate = self.seconds_per_example()
        if rate and seconds < math.inf:
            examples = min(examples, seconds / rate)
        epochs = (
            min(plan.epochs, int(examples // plan.n_train)) if examples < math.inf else plan.epochs
        )
        least = min(plan.epochs, max(self.policy.stopping.min_epochs, at_least))
        if epochs < least or seconds <= 0:
            return None
        return plan if epochs == plan.epochs else _with(plan, {"epochs": epochs})

    # -- choosing the next round

    def next_step(self):
        """The next round's (kind, parent, plan, cause, because), or why there is none."""
        parent = self.best()
        plan = self.plan_of(parent)
        diagnosis = _diagnosis(parent)
        revised = _next_plan(parent, plan)
        done = any(r.kind == "revision" and r.parent == parent.round for r in self.lineage.rounds)
        if revised is not None and not done and not self.tried(revised):
            fitted = self.fit_budget(revised, at_least=_epochs_trained(parent))
            if fitted is None:
                return "budget spent: too little left to train the revision as long as its parent"
            fixed = [f.problem for f in diagnosis.fixes]
            because = [p for p in diagnosis.problems if p.name in fixed] or diagnosis.problems
            cause = diagnosis.primary if diagnosis.primary in fixed else fixed[0]
            return ("revision", parent.round, fitted, cause, because)
        searched = self.search_step(parent, plan, diagnosis)
        return (
            searched if not isinstance(searched, str) else self.step_step(parent, plan, diagnosis)
        )

    def step_step(self, parent: LineageRound, plan: Plan, diagnosis: Diagnosis):
        """One step along the first dimension, in the policy's order, that the narrowed space
        still allows and no round has tried; kept whole as the round's run (no rerun)."""
        space, pruned = self.pruned_space(plan)
        data = plan.model_dump(mode="json")
        because = [p for p in diagnosis.problems if p.name not in _NOT_FOUND]
        for entry in self.policy.step:
            param = space.get(entry.field)
            if param is None:
                continue
            other = "down" if entry.first == "up" else "up"
            for direction in (entry.first, other):
                value = _stepped(param, get_path(data, entry.field), entry, direction)
                if value is None:
                    continue
                candidate = _with(plan, {entry.field: value})
                if self.tried(candidate, ignore=("epochs",)):
                    continue
                fitted = self.fit_budget(candidate, at_least=_epochs_trained(parent))
                if fitted is None:
                    return "budget spent: too little left to train a step as long as its parent"
                kept = [p for p in pruned if p.field == entry.field]
                why = f"{entry.id} ({direction}): {entry.reason} [{entry.source}]"
                return (
                    "step",
                    parent.round,
                    fitted,
                    entry.id,
                    because,
                    kept,
                    why,
                    self.set_aside(),
                )
        return f"converged: every step around round {parent.round} was tried or pruned"

    def search_step(self, parent: LineageRound, plan: Plan, diagnosis: Diagnosis):
        space, pruned = self.pruned_space(plan)
        if not space:
            return "nothing left to search: every dimension was pruned"
        stop = self.policy.stopping
        trial_epochs = max(1, min(plan.epochs, _epochs_trained(parent)))
        per_trial = trial_epochs * plan.n_train
        seconds, runs, examples = self.remaining()
        rate = self.seconds_per_example()
        if rate and seconds < math.inf:
            examples = min(examples, seconds / rate)
        # room for the trials and a final run as long as the parent's; the final run may
        # use what is left beyond that (its epochs are cut to it), never more
        finite = examples < math.inf
        room = (examples - per_trial) // per_trial if finite else math.inf
        n = min(stop.max_trials_per_search, runs - 1, room)
        if n < stop.min_trials_per_search:
            return "budget spent: no room for a search round"
        cap = (examples - n * per_trial) // plan.n_train if finite else math.inf
        run_plan = plan if cap >= plan.epochs else _with(plan, {"epochs": int(cap)})
        chosen = self.lineage
        search = {
            "method": "random",
            "space": {k: v.model_dump(exclude_none=True) for k, v in space.items()},
            "n_trials": int(n),
            "epochs_per_trial": trial_epochs,
            "metric": chosen.metric,
            "direction": chosen.direction,
            "pruner": "none",
        }
        searched = _with(run_plan, {"search": search})
        because = [p for p in diagnosis.problems if p.name not in _NOT_FOUND]
        return ("search", parent.round, searched, "search", because, pruned, None, self.set_aside())

    def pruned_space(self, plan: Plan) -> tuple[dict[str, SearchParam], list[PrunedDimension]]:
        """The plan's search space (the rules', for a 20-trial budget), narrowed by findings.

        A finding bounds a dimension at the value of the plan that showed it (the round whose
        diagnosis found it), not at the current plan's: underfitting at 128 units and
        overfitting at 512 leave 128..512 open.  The current plan's value always stays inside
        (it is the best measured), and a dimension with nothing else left is dropped.
        """
        space = dict(_search_space(self.profile))
        data = plan.model_dump(mode="json")
        space = {
            k: _around(v, get_path(data, k))
            for k, v in space.items()
            if get_path(data, k) is not None
        }
        pruned: list[PrunedDimension] = []
        for entry in self.policy.prune:
            for r in self.lineage.rounds:
                hit = [p for p in entry.problems if p in self.standing(r)]
                if not hit or entry.field not in space:
                    continue
                value = get_path(self.plan_of(r).model_dump(mode="json"), entry.field)
                if value is None:
                    continue
                current = get_path(data, entry.field)
                narrowed = _bound(space[entry.field], entry.keep, value)
                narrowed = _around(narrowed, current) if narrowed is not None else None
                if narrowed is not None and _width(narrowed) == 0:
                    narrowed = None
                if narrowed is None:
                    del space[entry.field]
                else:
                    space[entry.field] = narrowed
                pruned.append(
                    PrunedDimension(
                        field=entry.field,
                        rule=entry.id,
                        problem=hit[0],
                        bound=entry.keep if narrowed is not None else "dropped",
                        value=value,
                        found_in=r.round,
                        reason=entry.reason,
                        source=entry.source,
                    )
                )
        return space, pruned

    # -- running one round

    def run_round(
        self, kind, parent, plan, cause, because, pruned=(), step=None, set_aside=()
    ) -> LineageRound:
        number = len(self.lineage.rounds) + 1
        round_dir = self.out / f"round-{number:02d}"
        if round_dir.exists():  # an interrupted round: run it again from the start
            shutil.rmtree(round_dir)
        if number > 1:
            plan = _with(plan, {"baselines": []})  # the first round already measured them
        started = time.perf_counter()
        n_runs, n_examples, search_json = 0, 0, None
        if kind == "search":
            plan, n_runs, n_examples, search_json = self._search(plan, round_dir / "search", number)
        result = self._run(plan, round_dir)
        n_runs += 1
        n_examples += _examples(Path(result.run_dir))
        seconds = time.perf_counter() - started
        diagnosis = _diagnosis_at(result)
        parent_round = self.lineage.rounds[parent - 1] if parent else None
        score = result.metrics.get(self.lineage.metric) if result.checkpoint else None
        best = self.best()
        before = best.score if best is not None and best.score is not None else None
        sign = 1 if self.lineage.direction == "maximize" else -1
        improved = score is not None and (before is None or sign * (score - before) > 0)
        done = LineageRound(
            round=number,
            kind=kind,
            parent=parent,
            run_dir=str(round_dir),
            changes=plan_diff(self.plan_of(parent_round), plan) if parent_round else [],
            cause=cause,
            because=list(because),
            pruned=list(pruned),
            search=search_json,
            step=step,
            set_aside=list(set_aside),
            score=score,
            change=None if score is None or before is None else score - before,
            improved=improved,
            problems=[p.name for p in diagnosis.problems] if diagnosis else [],
            seconds=round(seconds, 2),
            runs=n_runs,
            examples=n_examples,
        )
        spent = self.lineage.spent
        self.lineage = self.lineage.model_copy(
            update={
                "rounds": [*self.lineage.rounds, done],
                "spent": AutoSpent(
                    seconds=round(time.perf_counter() - self.resumed_at, 2),
                    runs=spent.runs + n_runs,
                    examples=spent.examples + n_examples,
                ),
            }
        )
        self.lineage = self.lineage.model_copy(update={"best_round": self.best().round})
        write_model(self.out / LINEAGE, self.lineage)
        return done

    def _run(self, plan: Plan, round_dir: Path) -> RunResult:
        from advisor.diagnostics.diagnosis import write_diagnosis
        from engine.run import RunOptions, run_plan

        options = RunOptions(
            out_dir=round_dir,
            device=self.device,
            report=self._warn,
            progress=self.progress,
            score_test=False,
            diagnose=write_diagnosis,
            overwrite=True,  # the round's folder is fresh; a search round's search/ stays
        )
        try:
            return run_plan(plan, options)
        except EngineError:
            if (round_dir / "run.json").exists():  # diverged: history and diagnosis are written
                return load_model(RunResult, round_dir / "run.json")
            raise

    def _search(self, plan: Plan, search_dir: Path, number: int):
        """Search around ``plan``; its best values on ``plan`` (the plan's own epochs)."""
        from engine.searching.search import run_search

        found = run_search(
            plan,
            search_dir,
            worker=f"auto-round-{number}",  # each round's sampler draws apart
            device=self.device,
            progress=False,
            report=self._warn,
        )
        trials = sorted(search_dir.glob("trials/*/history.json"))
        n_examples = sum(_examples(t.parent) for t in trials)
        chosen = _with(plan, {"search": None})
        if found.best_plan is not None:
            best = load_model(Plan, found.best_plan)
            values = {k: get_path(best.model_dump(mode="json"), k) for k in plan.search.space}
            chosen = _with(chosen, values)
        return chosen, len(trials), n_examples, str(search_dir / "search.json")

    def _warn(self, line: str) -> None:
        self.say(f"    {line}")

    # -- stopping and the end

    def stop_reason(self) -> str | None:
        rounds, stop = self.lineage.rounds, self.policy.stopping
        best = self.best()
        chosen = [e for e in self.policy.selection if e.id == self.lineage.metric_rule]
        perfect = chosen[0].best_possible if chosen else None
        if perfect is not None and best.score is not None:
            sign = 1 if self.lineage.direction == "maximize" else -1
            if sign * (best.score - perfect) >= 0:
                return (
                    f"perfect: round {best.round} scored the best possible {self.lineage.metric} "
                    f"{perfect:g}; no later round could be chosen over it ({stop.id})"
                )
        since = len(rounds) - best.round
        if since >= stop.patience_rounds:
            return f"no new best for {since} rounds ({stop.id})"
        k = stop.plateau_rounds
        scored = [r for r in rounds if r.score is not None]
        if len(scored) > k and best.score is not None:
            sign = 1 if self.lineage.direction == "maximize" else -1
            earlier = [r.score for r in scored[:-k]]
            then = max(earlier, key=lambda s: sign * s)
            gain = sign * (best.score - then) / max(abs(then), 1e-12)
            if 0 <= gain < stop.plateau_relative:
                return f"plateau: the best moved {gain:.2%} in {k} rounds ({stop.id})"
        seconds, runs, examples = self.remaining()
        if seconds <= 0 or runs < 1 or examples < self.profile.n_train:
            return "budget spent"
        return None

    def finish(self) -> Lineage:
        """The best round's plan and, with a test split, its one test score."""
        from engine.run import score_test_split

        best = self.best()
        if best is None:
            return self.lineage
        final = Path(best.run_dir) / "plan.json"
        test = (
            score_test_split(best.run_dir)
            if not self.lineage.test_metrics
            else self.lineage.test_metrics
        )
        shutil.copyfile(final, self.out / "final_plan.json")
        self.lineage = self.lineage.model_copy(
            update={"best_round": best.round, "final_plan": str(final), "test_metrics": test}
        )
        write_model(self.out / LINEAGE, self.lineage)
        return self.lineage


def _diagnosis(r: LineageRound) -> Diagnosis:
    return load_model(Diagnosis, Path(r.run_dir) / "diagnosis.json")


def _diagnosis_at(result: RunResult) -> Diagnosis | None:
    return load_model(Diagnosis, result.diagnosis) if result.diagnosis else None


def _next_plan(r: LineageRound, plan: Plan) -> Plan | None:
    path = Path(r.run_dir) / "next_plan.json"
    if not path.exists():
        return None
    revised = load_model(Plan, path)
    return _with(revised, {"output_dir": None, "device": plan.device, "search": None})


def _epochs_trained(r: LineageRound) -> int:
    return len(json.loads((Path(r.run_dir) / "history.json").read_text())["epochs"])


def _examples(run_dir: Path) -> int:
    """Examples a run trained: its epochs times its plan's n_train."""
    history = json.loads((run_dir / "history.json").read_text())
    plan = json.loads((run_dir / "plan.json").read_text())
    return len(history["epochs"]) * int(plan["n_train"])


@lru_cache(maxsize=8)
def _space_for(profile_json: str) -> dict[str, SearchParam]:
    from advisor.expert.recommending import recommend

    profile = Profile.model_validate_json(profile_json)
    budget = (profile.budget.model_dump() if profile.budget else {}) | {"max_trials": 20}
    plan = recommend(Profile.model_validate({**profile.model_dump(), "budget": budget}))
    return dict(plan.search.space) if plan.search else {}


def _search_space(profile: Profile) -> dict[str, SearchParam]:
    """The space the search rules give this data for a 20-trial budget (random search)."""
    return _space_for(profile.model_dump_json())


def _around(param: SearchParam, value: Any) -> SearchParam:
    """A numeric dimension widened to hold the plan's current value; choices gain it."""
    if param.type == "categorical":
        if value in param.choices:
            return param
        return param.model_copy(update={"choices": sorted([*param.choices, value])})
    if not isinstance(value, (int, float)) or (param.log and value <= 0):
        return param  # a log scale cannot reach 0 (no weight decay): the space stays as given
    low, high = min(param.low, value), max(param.high, value)
    return param.model_copy(update={"low": low, "high": high})


def _width(param: SearchParam) -> float:
    """How much a dimension leaves open: choices beyond one, or high - low."""
    if param.type == "categorical":
        return len(param.choices) - 1
    return param.high - param.low


def _stepped(param: SearchParam, value: Any, step, direction: str) -> Any:
    """``value`` moved one ``step`` up or down inside ``param``; None when it cannot move."""
    up = direction == "up"
    if param.type == "categorical" or step.scale == "choice":
        choices = sorted(param.choices) if param.type == "categorical" else None
        if not choices or value not in choices:
            return None
        at = choices.index(value) + (1 if up else -1)
        return choices[at] if 0 <= at < len(choices) else None
    if not isinstance(value, (int, float)):
        return None
    if step.scale == "log":
        if value <= 0:  # no weight decay: a step up starts at the space's smallest value
            moved = param.low if up and param.low > 0 else None
        else:
            moved = value * step.amount if up else value / step.amount
    else:
        moved = value + step.amount if up else value - step.amount
    if moved is None:
        return None
    moved = min(max(moved, param.low), param.high)
    moved = round(moved) if param.type == "int" else float(f"{moved:.4g}")
    return moved if moved != value else None


def _bound(param: SearchParam, keep: str, value: Any) -> SearchParam | None:
    """The dimension kept at most / at least ``value``; None when nothing but the value is left."""
    if param.type == "categorical":
        kept = [c for c in param.choices if (c <= value if keep == "at_most" else c >= value)]
        return param.model_copy(update={"choices": kept}) if len(kept) > 1 else None
    low, high = (
        (param.low, min(param.high, value))
        if keep == "at_most"
        else (max(param.low, value), param.high)
    )
    return param.model_copy(update={"low": low, "high": high}) if low < high else None
