"""Regenerate examples/plans/ from examples/profiles/ with the current knowledge base.

Run after changing a rule or a profile::

    python examples/regenerate.py           # rewrite every plan
    python examples/regenerate.py --check   # exit 1 and name the plans that drifted

Each ``profiles/NAME.json`` gives ``plans/NAME.json``: exactly what
``advisor recommend profiles/NAME.json -o plans/NAME.json`` writes, so the
checked-in plans are the golden outputs the tests compare against.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROFILES = HERE / "profiles"
PLANS = HERE / "plans"


def plan_json(profile: Path) -> str:
    """The plan file text ``advisor recommend PROFILE -o PLAN`` would write."""
    from advisor.expert.recommending import recommend

    return recommend(profile).model_dump_json(indent=2) + "\n"


def drifted() -> list[str]:
    """Names of plans whose file differs from what the profile now gives (or is missing)."""
    names = []
    for profile in sorted(PROFILES.glob("*.json")):
        plan = PLANS / profile.name
        if not plan.exists() or plan.read_text(encoding="utf-8") != plan_json(profile):
            names.append(profile.name)
    stale = {p.name for p in PLANS.glob("*.json")} - {p.name for p in PROFILES.glob("*.json")}
    return names + sorted(f"{name} (no profile)" for name in stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report drift instead of rewriting")
    args = parser.parse_args(argv)
    if args.check:
        names = drifted()
        for name in names:
            print(f"examples/plans/{name} is out of date; run python examples/regenerate.py")
        return 1 if names else 0
    from advisor.contract.io import write_atomic

    PLANS.mkdir(exist_ok=True)
    for profile in sorted(PROFILES.glob("*.json")):
        write_atomic(PLANS / profile.name, plan_json(profile))
        print(f"wrote examples/plans/{profile.name}")
    for stale in sorted(
        {p.name for p in PLANS.glob("*.json")} - {p.name for p in PROFILES.glob("*.json")}
    ):
        (PLANS / stale).unlink()
        print(f"removed examples/plans/{stale} (its profile is gone)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
