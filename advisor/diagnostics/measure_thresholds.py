"""The thresholds a curve measure needs while it measures (what counts as rounding or noise),
read from the rules' threshold facts, so that they live in rules/*.toml like every other one.

The diagnosis rules compare most features with ``threshold.*`` facts after measuring; a few
definitions (a move within the log's rounding or under 2 % of the curve's range is no move)
decide what is counted in the first place, so the measures take them from the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from types import MappingProxyType

from advisor.expert.rules import Rule, load_rules

# The threshold facts the measures read (rules/50_thresholds.toml declares their values).
MEASURE_THRESHOLDS = ("threshold.rounding_units", "threshold.noise_share")


def thresholds_of(rules: Iterable[Rule]) -> Mapping[str, float]:
    """Constant ``threshold.*`` values that unconditional rules set; of two rules setting
    one, the higher-ranked wins (as it would in inference)."""
    found: dict[str, float] = {}
    for rule in sorted((r for r in rules if not r.when), key=lambda r: r.rank):
        for key, value in rule.infer.items():
            if key.startswith("threshold.") and isinstance(value, (int, float)):
                found[key] = float(value)
    return MappingProxyType(found)


@lru_cache(maxsize=1)
def built_in_thresholds() -> Mapping[str, float]:
    """The shipped knowledge base's threshold values."""
    return thresholds_of(load_rules(domain="diagnose"))
