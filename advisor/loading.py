"""Load the project's own files (profiles and plans) from a path, a dict or a model."""

from __future__ import annotations

from pathlib import Path

from advisor.io import load_model
from advisor.schemas import Plan, Profile


def load_profile(source: Profile | dict | str | Path) -> Profile:
    """A validated Profile from a Profile, a dict or a JSON file path.

    Raises:
        InputError: one line naming the file, the field and what was expected.
    """
    return load_model(Profile, source, what="profile")


def load_plan(source: Plan | dict | str | Path) -> Plan:
    """A validated Plan from a Plan, a dict or a JSON file path.

    Raises:
        InputError: one line naming the file, the field and what was expected.
    """
    return load_model(Plan, source, what="plan")
