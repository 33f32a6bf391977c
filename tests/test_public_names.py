"""Every public name of ``advisor`` and ``engine`` works as documented, all submodules imported.

Importing a submodule binds it on its package; a module named like an exported
function would then hide the function.  So all submodules are imported first,
and only then is each public name looked up and used.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from pydantic import BaseModel

import advisor
import engine

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _submodules(package) -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + "."))


@pytest.fixture(scope="module", autouse=True)
def every_submodule_imported():
    for name in _submodules(advisor) + _submodules(engine):
        importlib.import_module(name)


@pytest.mark.parametrize("package", [advisor, engine], ids=["advisor", "engine"])
def test_no_public_name_is_a_module_and_none_is_missing(package):
    names = [n for n in package.__all__ if n != "__version__"]
    assert names, f"{package.__name__} exports nothing"
    for name in names:
        value = getattr(package, name)
        assert not inspect.ismodule(value), (
            f"{package.__name__}.{name} is a module, not the API object"
        )
        assert callable(value) or hasattr(value, "get"), f"{package.__name__}.{name} is not usable"
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        package.nothing_here  # noqa: B018


def test_no_submodule_shares_a_name_with_an_exported_function():
    for package in (advisor, engine):
        leaves = {name.rsplit(".", 1)[-1] for name in _submodules(package)}
        assert not leaves & set(package.__all__), package.__name__


def test_the_readme_session_works_through_the_package():
    profile = EXAMPLES / "profiles" / "iris_tiny.json"
    plan = advisor.recommend(str(profile))
    assert isinstance(plan, advisor.Plan) and plan.task == "multiclass"
    assert advisor.recommend(advisor.load_profile(profile)).model_dump() == plan.model_dump()
    explained = advisor.explain(plan, "loss.name")
    assert set(explained) == {"loss.name"} and explained["loss.name"].value == plan.loss.name
    path = EXAMPLES / "histories" / "lightning_metrics_diverged.csv"
    history = advisor.load_history(path)
    assert isinstance(history, advisor.History) and history.epochs
    assert set(advisor.load_histories(path)) and all(
        isinstance(h, advisor.History) for h in advisor.load_histories(path).values()
    )
    diagnosis = advisor.diagnose(str(path))
    assert isinstance(diagnosis, advisor.Diagnosis)
    assert "diverged" in [p.name for p in diagnosis.problems]
    plan_file = EXAMPLES / "plans" / "iris_tiny.json"
    assert advisor.load_plan(plan_file).task == "multiclass"


def test_the_entry_points_take_the_documented_arguments():
    assert list(inspect.signature(advisor.run).parameters)[:3] == ["plan", "out_dir", "device"]
    assert "workers" in inspect.signature(advisor.search).parameters
    assert list(inspect.signature(advisor.load).parameters) == ["run_dir"]
    assert list(inspect.signature(engine.run_plan).parameters) == ["plan", "options"]


def test_the_classes_and_errors_are_what_they_say():
    for name in ("Profile", "Plan", "History", "Diagnosis", "RunResult"):
        assert issubclass(getattr(advisor, name), BaseModel), name
    assert issubclass(advisor.InputError, advisor.AdvisorError)
    with pytest.raises(advisor.InputError, match="no_such_plan.json: no such file"):
        advisor.load_plan(ROOT / "no_such_plan.json")
    with pytest.raises(advisor.InputError, match="does not exist"):
        advisor.load(ROOT / "no_such_run")


def test_the_engine_registries_find_entries_and_suggest_on_a_miss():
    assert callable(engine.LOSSES.get("mse")) and callable(engine.OPTIMIZERS.get("adam"))
    assert callable(engine.MODELS.get("mlp")) and callable(engine.SCHEDULES.get("cosine"))
    with pytest.raises(advisor.InputError, match="adam"):
        engine.OPTIMIZERS.get("adma")
    assert callable(engine.make_train_step)
    assert isinstance(engine.METRICS, engine.Registry) and isinstance(
        engine.AUGMENTATIONS, engine.Registry
    )
