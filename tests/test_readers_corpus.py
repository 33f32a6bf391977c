"""Every history in the real-history corpus is read, and diagnosed with exit code 0.

The corpus (tests/corpus/entries/<id>/, see tests/corpus/CRITERIA.md) holds files as
their projects published them; whatever a reader can take from a file must reach the
diagnosis without an error: only unreadable content may exit 2.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli.commands import cli
from advisor.readers import load_histories

ENTRIES = sorted((Path(__file__).parent / "corpus" / "entries").glob("*/meta.toml"))


def _file(meta: Path) -> Path:
    return meta.parent / tomllib.loads(meta.read_text())["file"]


@pytest.mark.parametrize("meta", ENTRIES, ids=[m.parent.name for m in ENTRIES])
def test_corpus_history_is_read_and_diagnosed(meta):
    path = _file(meta)
    runs = load_histories(path)
    assert runs and all(history.epochs for history in runs.values())
    result = CliRunner().invoke(cli, ["diagnose", str(path)])
    assert result.exit_code == 0, result.output
