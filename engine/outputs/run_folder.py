"""The run folder contract: checked before any work, cleared only of the project's own files.

``check_run_dir`` refuses, before data is loaded or anything compiles, a run
folder that cannot be written (``advisor.contract.inputs.check_output``), one that is
a symbolic link or holds one where a run file goes, and a non-empty folder
unless the run resumes it (``--resume``) or replaces its run
(``--overwrite``).  ``start_run_dir`` creates the folder when training is
about to start; with overwrite it first removes the files a run writes
(``OWN_FILES``, the checkpoints and the TensorBoard event files) and nothing else.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from advisor.contract.errors import InputError
from advisor.contract.inputs import check_output

OWN_FILES = (
    "plan.json",
    "history.json",
    "history.csv",
    "metrics.json",
    "preprocessing.json",
    "model.safetensors",
    "model.json",
    "curves.png",
    "diagnosis.json",
    "next_plan.json",
    "run.json",
)
OWN_FOLDERS = ("checkpoints",)
EVENTS_GLOB = "events.out.tfevents.*"


def own_entries(run_dir: Path) -> list[Path]:
    """The entries of ``run_dir`` a run writes (files, checkpoint folder, event files)."""
    names = set(OWN_FILES) | set(OWN_FOLDERS)
    found = [p for p in run_dir.iterdir() if p.name in names]
    return found + sorted(run_dir.glob(EVENTS_GLOB))


def check_run_dir(
    run_dir: str | Path, *, resume: bool = False, overwrite: bool = False, option: str = "--out"
) -> Path:
    """Refuse, before any work, a run folder this run must not write into.

    Raises:
        InputError: one line naming the option, the folder and what to do instead.
    """
    run_dir = Path(run_dir)
    if resume and overwrite:
        raise InputError(f"{option}: --resume and --overwrite exclude each other; choose one")
    if run_dir.is_symlink():
        raise InputError(
            f"{option}: {run_dir} is a symbolic link; give the folder it points to, "
            "so the run is written where you can see it"
        )
    check_output(run_dir, option=option, folder=True)
    if not run_dir.is_dir():
        if resume:
            raise InputError(f"--resume: {run_dir} does not exist; expected a run folder")
        return run_dir
    links = [p.name for p in own_entries(run_dir) if p.is_symlink()]
    if links:
        raise InputError(
            f"{option}: {run_dir / links[0]} is a symbolic link; a run never writes through one "
            "(remove it, or choose another folder)"
        )
    if resume:
        if not (run_dir / "plan.json").is_file():
            raise InputError(
                f"--resume: {run_dir} holds no plan.json; expected a folder an interrupted "
                "advisor run wrote"
            )
        if (run_dir / "run.json").exists():
            raise InputError(
                f"--resume: {run_dir} holds a finished run (run.json); nothing to resume "
                "(use --overwrite to train it again)"
            )
        return run_dir
    if any(run_dir.iterdir()) and not overwrite:
        raise InputError(
            f"{option}: {run_dir} is not empty; continue its run with --resume {run_dir}, "
            "replace it with --overwrite, or choose another folder"
        )
    return run_dir


def start_run_dir(run_dir: Path, overwrite: bool = False) -> None:
    """Create the run folder; with ``overwrite`` first remove the project's own files in it."""
    if overwrite and run_dir.is_dir():
        for entry in own_entries(run_dir):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
