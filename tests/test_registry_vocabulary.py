"""The engine's registries hold exactly the contract's names, so advisor and engine cannot drift."""

from __future__ import annotations

import pytest

from advisor.contract import vocabulary
from advisor.contract.errors import UnknownNameError
from engine.datasets.augment import AUGMENTATIONS
from engine.optim.losses import LOSSES
from engine.optim.optimizers import OPTIMIZERS
from engine.optim.schedules import SCHEDULES

REGISTRIES = [
    (LOSSES, vocabulary.LOSSES, "focall", "focal"),
    (OPTIMIZERS, vocabulary.OPTIMIZERS, "adamm", "adam"),
    (SCHEDULES, vocabulary.SCHEDULES, "cosin", "cosine"),
    (AUGMENTATIONS, vocabulary.AUGMENTATIONS, "rotation", "rotate"),
]
IDS = [registry.kind for registry, *_ in REGISTRIES]


@pytest.mark.parametrize("registry, names, typo, meant", REGISTRIES, ids=IDS)
def test_registry_equals_the_vocabulary(registry, names, typo, meant):
    assert set(registry.names()) == set(names)


@pytest.mark.parametrize("registry, names, typo, meant", REGISTRIES, ids=IDS)
def test_unknown_name_suggests_the_close_one(registry, names, typo, meant):
    with pytest.raises(UnknownNameError) as err:
        registry.get(typo)
    assert str(err.value).startswith(f"{registry.kind} {typo!r} is unknown; expected one of ")
    assert str(err.value).endswith(f"did you mean {meant!r}?")
    assert err.value.exit_code == 2
