"""Model checkpoints as safetensors (no pickle) plus a small JSON of what they hold.

``save_checkpoint(run_dir, variables, meta)`` writes ``model.safetensors`` —
every array of the variable tree under its path joined by ``/``
(``params/base/blocks_0/dense/kernel``) — and ``model.json`` with the model
section, task, input shape and the list of paths.  ``load_checkpoint`` reads
them back.  ``transfer_base`` puts a checkpoint's base into a new network's
variables by name, leaving the new head as initialised: this is how a run
becomes ``model.base`` of a later plan.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from advisor.contract.errors import InputError
from advisor.contract.inputs import checked_file, read_json
from advisor.contract.io import write_atomic

WEIGHTS = "model.safetensors"
STRUCTURE = "model.json"
FORMAT = "advisor-checkpoint-1"


def flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """A nested dict of arrays -> {"a/b/c": array}."""
    flat: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict) or hasattr(value, "items"):
            flat.update(flatten(dict(value), path))
        else:
            flat[path] = np.asarray(value)
    return flat


def unflatten(flat: dict[str, np.ndarray], field: str = "checkpoint") -> dict:
    """{"a/b/c": array} -> a nested dict of arrays.

    Raises:
        InputError: a key is both an array and the prefix of others ("a/b" and "a/b/c").
    """
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split("/")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(
                    f"{field}: array {path[:80]!r} lies under another array; expected a tree"
                )
        if isinstance(node.get(leaf), dict):
            raise InputError(
                f"{field}: array {path[:80]!r} is also a prefix of others; expected a tree"
            )
        node[leaf] = value
    return tree


def save_checkpoint(run_dir: str | Path, variables: dict, meta: dict) -> Path:
    """Write the weights and their structure into ``run_dir``, each file atomically."""
    from safetensors.numpy import save_file

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    flat = {k: np.ascontiguousarray(v) for k, v in flatten(variables).items()}
    fd, tmp = tempfile.mkstemp(prefix=f".{WEIGHTS}.", dir=run_dir)
    os.close(fd)
    try:
        save_file(flat, tmp, metadata={"format": FORMAT})
        umask = os.umask(0)  # mkstemp makes 0600; give the mode a plain open() would
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, run_dir / WEIGHTS)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    structure = {
        "format": FORMAT,
        **meta,
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in flat.items()},
    }
    write_atomic(run_dir / STRUCTURE, json.dumps(structure, indent=2) + "\n")
    return run_dir / WEIGHTS


def _weights_path(path: Path) -> Path:
    return path / WEIGHTS if path.is_dir() else path


def load_checkpoint(path: str | Path, field: str = "model.base") -> tuple[dict, dict]:
    """(variables, structure) from a run directory or a ``model.safetensors`` file.

    Raises:
        InputError: naming ``field`` when the path holds no readable checkpoint.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    weights = _weights_path(Path(path))
    if not weights.exists():
        raise InputError(
            f"{field}: {weights} does not exist; expected a run directory holding {WEIGHTS}"
        )
    checked_file(weights, field=field, what="safetensors checkpoint")
    try:
        flat = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, MemoryError) as err:
        raise InputError(
            f"{field}: {weights} is not a readable safetensors file ({type(err).__name__})"
        ) from None
    structure_file = weights.with_name(STRUCTURE)
    structure = read_json(structure_file, field=field) if structure_file.exists() else {}
    if not isinstance(structure, dict):
        raise InputError(
            f"{field}: {structure_file} holds a {type(structure).__name__}; expected an object"
        )
    found = structure.get("format", FORMAT)  # the only format so far; older files lack the key
    if found != FORMAT:
        raise InputError(
            f"{field}: {structure_file}: format {str(found)[:40]!r} is not one this advisor "
            f"reads ({FORMAT!r}); upgrade advisor to read it"
        )
    return unflatten(flat, field=f"{field}: {weights}"), structure


def transfer_base(variables: dict, checkpoint: dict, source: str) -> dict:
    """``variables`` with the base (params and batch statistics) taken from ``checkpoint``.

    Every base array of the new network must exist in the checkpoint with the
    same shape; the head keeps its fresh initialisation.

    Raises:
        InputError: naming model.base and the first array that does not fit.
    """
    merged = {collection: dict(tree) for collection, tree in variables.items()}
    for collection, tree in variables.items():
        if "base" not in tree:
            continue
        new = flatten(tree["base"])
        old = flatten(checkpoint.get(collection, {}).get("base", {}))
        for path, array in new.items():
            if path not in old:
                raise InputError(
                    f"model.base: {source} has no {collection}/base/{path}; the plan's model must have "
                    "the same base structure (arch, filters, units, blocks) as the checkpoint's"
                )
            if tuple(old[path].shape) != tuple(array.shape):
                raise InputError(
                    f"model.base: {collection}/base/{path} is {list(old[path].shape)} in {source} but "
                    f"{list(array.shape)} in this plan's model; use the checkpoint's base structure and input channels"
                )
        merged[collection]["base"] = unflatten({p: old[p].astype(new[p].dtype) for p in new})
    return merged
