"""Versioned files: older formats are migrated, newer ones refused by name, ``$schema`` is accepted.

Every file the project writes carries ``format_version``; every file written
before versions existed (all of examples/ and tests/data) reads as version 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli.commands import cli
from advisor.contract import versions
from advisor.contract.errors import InputError
from advisor.contract.io import load_model, write_model
from advisor.contract.loading import load_plan, load_profile
from advisor.contract.schemas import SCHEMAS, Plan, Versioned
from advisor.readers import load_history

ROOT = Path(__file__).resolve().parent.parent
PLANS = sorted([*ROOT.glob("examples/plans/*.json"), *ROOT.glob("examples/bases/*.json")])
PLANS += sorted([*ROOT.glob("examples/**/plan.json"), *ROOT.glob("tests/data/**/plan.json")])
# edge/run_dir/plan.json is a two-key stub beside an edge-case history, never a plan
PLANS = [p for p in PLANS if "edge" not in p.relative_to(ROOT).parts]
HISTORIES = sorted(
    [*ROOT.glob("examples/**/history.json"), *ROOT.glob("tests/data/**/history.json")]
)
PROFILE = ROOT / "examples/profiles/iris_tiny.json"
PLAN = ROOT / "examples/plans/iris_tiny.json"


def _ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def _with(path: Path, tmp_path: Path, **changes) -> Path:
    """A copy of the JSON file at ``path`` with keys set (None removes one)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        data.pop(key, None) if value is None else data.__setitem__(key, value)
    out = tmp_path / path.name
    out.write_text(json.dumps(data), encoding="utf-8")
    return out


# ----------------------------------------------------------------- every file already written


def test_every_checked_in_file_is_found():
    assert len(PLANS) >= 17 and len(HISTORIES) >= 20


@pytest.mark.parametrize("path", PLANS, ids=_ids(PLANS))
def test_every_checked_in_plan_reads_as_the_current_version(path):
    assert load_plan(path).format_version == versions.CURRENT["plan"]


@pytest.mark.parametrize("path", HISTORIES, ids=_ids(HISTORIES))
def test_every_checked_in_history_reads_as_the_current_version(path):
    assert load_history(path).format_version == versions.CURRENT["history"]


def test_profiles_without_a_version_read_as_version_1(tmp_path):
    for path in sorted(ROOT.glob("examples/profiles/*.json")):
        assert versions.FIELD not in json.loads(path.read_text(encoding="utf-8")), path
        assert load_profile(path).format_version == 1


def test_written_files_carry_the_version_first(tmp_path):
    write_model(tmp_path / "plan.json", load_plan(PLAN))
    data = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    assert next(iter(data)) == versions.FIELD and data[versions.FIELD] == versions.CURRENT["plan"]


# ----------------------------------------------------------------------------- $schema


def test_a_schema_key_is_accepted_and_not_written_back(tmp_path):
    profile = _with(PROFILE, tmp_path, **{"$schema": "https://example.org/profile.schema.json"})
    result = CliRunner().invoke(cli, ["recommend", str(profile), "-o", str(tmp_path / "plan.json")])
    assert result.exit_code == 0, result.output
    plan = json.loads((tmp_path / "plan.json").read_text(encoding="utf-8"))
    assert "$schema" not in plan and plan["name"] == "iris_tiny"


def test_a_schema_key_that_is_not_text_is_one_line(tmp_path):
    plan = _with(PLAN, tmp_path, **{"$schema": 3})
    with pytest.raises(InputError, match=r"iris_tiny\.json: \$schema: got int 3; expected text"):
        load_plan(plan)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_published_schema_names_the_version_and_allows_schema(name):
    properties = SCHEMAS[name].model_json_schema()["properties"]
    assert list(properties)[:2] == ["$schema", "format_version"]
    assert properties["format_version"]["minimum"] == versions.FIRST


def test_advisor_schema_prints_both_keys():
    result = CliRunner().invoke(cli, ["schema", "history"])
    assert result.exit_code == 0
    assert {"$schema", "format_version"} <= set(json.loads(result.output)["properties"])


# ----------------------------------------------------------------------------- refused versions


def test_a_newer_profile_is_refused_by_version_one_line_exit_2_nothing_written(tmp_path):
    profile = _with(PROFILE, tmp_path, format_version=versions.CURRENT["profile"] + 1)
    out = tmp_path / "plan.json"
    result = CliRunner().invoke(cli, ["recommend", str(profile), "-o", str(out)])
    assert result.exit_code == 2
    assert result.output == (
        f"error: {profile}: format_version: profile format {versions.CURRENT['profile'] + 1} "
        f"is newer than this advisor reads ({versions.CURRENT['profile']}); "
        "upgrade advisor to read it\n"
    )
    assert not out.exists()


def test_a_newer_history_is_refused_by_diagnose(tmp_path):
    history = _with(HISTORIES[0], tmp_path, format_version=99)
    result = CliRunner().invoke(cli, ["diagnose", str(history)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "history format 99 is newer" in result.output


@pytest.mark.parametrize("model", [m for m in SCHEMAS.values() if issubclass(m, Versioned)])
def test_every_file_kind_refuses_a_newer_version_naming_the_file(model, tmp_path):
    path = tmp_path / "file.json"
    path.write_text(json.dumps({"format_version": 1000}), encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_model(model, path)
    assert str(err.value).startswith(f"{path}: format_version: {model.format_kind} format 1000 ")


@pytest.mark.parametrize("bad", ["1", 1.5, True, None, [1], 0, -3])
def test_a_version_that_is_not_one_is_one_line(bad, tmp_path):
    with pytest.raises(InputError, match=r"iris_tiny\.json: format_version: ") as err:
        load_plan(_with(PLAN, tmp_path, format_version=bad) if bad is not None else _null(tmp_path))
    assert "\n" not in str(err.value)


def _null(tmp_path: Path) -> Path:
    data = json.loads(PLAN.read_text(encoding="utf-8"))
    data["format_version"] = None
    (tmp_path / PLAN.name).write_text(json.dumps(data), encoding="utf-8")
    return tmp_path / PLAN.name


# ----------------------------------------------------------------------------- migrations


@pytest.fixture
def plan_at_version_3(monkeypatch):
    """The plan format as if it had changed twice: epochs was n_epochs in v1, max_epochs in v2."""
    monkeypatch.setitem(versions.CURRENT, "plan", 3)
    monkeypatch.setitem(versions.MIGRATIONS, ("plan", 1), _rename("n_epochs", "max_epochs"))
    monkeypatch.setitem(versions.MIGRATIONS, ("plan", 2), _rename("max_epochs", "epochs"))


def _rename(old: str, new: str):
    def step(data: dict) -> dict:
        data = dict(data)
        if old in data:
            data[new] = data.pop(old)
        return data

    return step


def _old_plan(tmp_path: Path, version: int | None, key: str) -> Path:
    data = json.loads(PLAN.read_text(encoding="utf-8"))
    data.pop("format_version")
    data[key] = data.pop("epochs") + 5
    if version is not None:
        data["format_version"] = version
    (tmp_path / "plan.json").write_text(json.dumps(data), encoding="utf-8")
    return tmp_path / "plan.json"


@pytest.mark.usefixtures("plan_at_version_3")
@pytest.mark.parametrize(
    ("version", "key"), [(1, "n_epochs"), (None, "n_epochs"), (2, "max_epochs")]
)
def test_an_older_plan_is_migrated_step_by_step(version, key, tmp_path):
    expected = json.loads(PLAN.read_text(encoding="utf-8"))["epochs"] + 5
    plan = load_plan(_old_plan(tmp_path, version, key))
    assert plan.format_version == 3 and plan.epochs == expected
    write_model(tmp_path / "again.json", plan)
    assert json.loads((tmp_path / "again.json").read_text())["format_version"] == 3


@pytest.mark.usefixtures("plan_at_version_3")
def test_a_current_file_is_not_migrated(tmp_path):
    with pytest.raises(InputError, match=r"plan\.json: n_epochs: unknown field"):
        load_plan(_old_plan(tmp_path, 3, "n_epochs"))


@pytest.mark.usefixtures("plan_at_version_3")
def test_a_plan_built_in_code_is_current_without_migrating():
    data = json.loads(PLAN.read_text(encoding="utf-8"))
    data.pop("format_version")
    assert Plan(**data).format_version == 3


def test_an_older_version_without_a_migration_is_refused_by_version(monkeypatch, tmp_path):
    monkeypatch.setitem(versions.CURRENT, "plan", 3)
    monkeypatch.setitem(versions.MIGRATIONS, ("plan", 2), _rename("max_epochs", "epochs"))
    with pytest.raises(
        InputError, match=r"format_version: plan format 1 is no longer read; expected 3"
    ):
        load_plan(_old_plan(tmp_path, 1, "n_epochs"))
    assert load_plan(_old_plan(tmp_path, 2, "max_epochs")).format_version == 3


def test_the_registry_decorator_registers_the_step(monkeypatch):
    monkeypatch.setattr(versions, "MIGRATIONS", {})

    @versions.migration("history", 1)
    def drop_note(data):
        return {k: v for k, v in data.items() if k != "note"}

    assert versions.MIGRATIONS == {("history", 1): drop_note}


# ----------------------------------------------------------------------------- model.json


def test_a_checkpoint_of_another_format_is_refused_by_name(tmp_path):
    import numpy as np

    from engine.outputs.checkpoint import STRUCTURE, load_checkpoint, save_checkpoint

    save_checkpoint(
        tmp_path, {"params": {"dense": {"kernel": np.ones((2, 3))}}}, {"task": "binary"}
    )
    variables, structure = load_checkpoint(tmp_path)
    assert variables["params"]["dense"]["kernel"].shape == (2, 3)
    structure["format"] = "advisor-checkpoint-2"
    (tmp_path / STRUCTURE).write_text(json.dumps(structure), encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_checkpoint(tmp_path)
    assert str(err.value) == (
        f"model.base: {tmp_path / STRUCTURE}: format 'advisor-checkpoint-2' is not one this "
        "advisor reads ('advisor-checkpoint-1'); upgrade advisor to read it"
    )
    del structure["format"]  # written before the key existed: the first format
    (tmp_path / STRUCTURE).write_text(json.dumps(structure), encoding="utf-8")
    assert load_checkpoint(tmp_path)[1]["task"] == "binary"
