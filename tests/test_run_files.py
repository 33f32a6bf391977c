"""Run files: written with the mode a plain open() gives, not mkstemp's private 0600."""

import os
from pathlib import Path

import numpy as np

from engine.outputs.checkpoint import save_checkpoint


def test_weights_and_structure_are_created_readable(tmp_path):
    umask = os.umask(0o022)
    try:
        weights = save_checkpoint(tmp_path, {"params": {"w": np.ones((2, 3), np.float32)}}, {})
    finally:
        os.umask(umask)
    assert weights.stat().st_mode & 0o777 == 0o644
    for path in tmp_path.iterdir():
        assert path.stat().st_mode & 0o777 == 0o644, path.name


def test_curve_png_is_created_readable(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from engine.outputs.curves import save_figure

    umask = os.umask(0o022)
    try:
        fig = plt.figure()
        path = save_figure(fig, tmp_path / "curves.png")
        plt.close(fig)
    finally:
        os.umask(umask)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_mode & 0o777 == 0o644


# ----------------------------------------------------------------------------- the run folder


def _cli(*args):
    from click.testing import CliRunner

    from advisor.cli.commands import cli

    return CliRunner().invoke(cli, list(map(str, args)))


def _plan_file(tmp_path, **changes):
    from tests.engine_plans import make_plan

    path = tmp_path / "plan.json"
    path.write_text(make_plan(**changes).model_dump_json())
    return path


def test_every_file_of_a_run_with_checkpoints_is_0644(tmp_path):
    from advisor.workflows.running import run

    umask = os.umask(0o022)
    try:
        run(_plan_file(tmp_path, epochs=2, checkpoint={"interval_seconds": 0}), tmp_path / "r")
    finally:
        os.umask(umask)
    files = [p for p in (tmp_path / "r").rglob("*") if p.is_file()]
    assert any(p.parent.parent.name == "checkpoints" for p in files)
    assert {p.suffix for p in files} >= {".png", ".safetensors", ".csv", ".json"}
    wrong = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in files}
    assert {k: v for k, v in wrong.items() if v != "0o644"} == {}


def test_a_non_empty_run_folder_is_refused_before_any_work(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = _cli("run", _plan_file(tmp_path), "--out", out)
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: --out: {out} is not empty; continue its run with --resume {out}, "
        "replace it with --overwrite, or choose another folder"
    )
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_overwrite_removes_only_the_run_files(tmp_path):
    from advisor.workflows.running import run

    out = tmp_path / "r"
    (out / "checkpoints" / "7").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    (out / "model.safetensors").write_bytes(b"stale")
    (out / "events.out.tfevents.1.old").write_bytes(b"stale")
    run(_plan_file(tmp_path, epochs=1), out, overwrite=True)
    names = {p.name for p in out.iterdir()}
    assert "notes.txt" in names and "checkpoints" not in names
    assert "events.out.tfevents.1.old" not in names
    assert (out / "model.safetensors").read_bytes()[:8] != b"stale"


def test_a_symlinked_run_folder_or_output_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    result = _cli("run", _plan_file(tmp_path), "--out", tmp_path / "link")
    assert result.exit_code == 2 and "is a symbolic link" in result.output
    target = tmp_path / "target.json"
    target.write_text("{}")
    (tmp_path / "plan_link.json").symlink_to(target)
    profile = Path(__file__).resolve().parent.parent / "examples/profiles/digits_mlp.json"
    result = _cli("recommend", profile, "-o", tmp_path / "plan_link.json")
    assert result.exit_code == 2 and "is a symbolic link" in result.output
    assert target.read_text() == "{}"


def test_an_output_that_is_an_input_is_refused(tmp_path):
    rows = tmp_path / "rows.npy"
    np.save(rows, np.zeros((2, 4), np.float32))
    result = _cli("predict", tmp_path / "run", rows, "-o", rows)
    assert result.exit_code == 2
    assert "is also an input of this command" in result.output
    (tmp_path / "run").mkdir()
    weights = tmp_path / "run" / "model.safetensors"
    weights.write_bytes(b"x")
    result = _cli("export", tmp_path / "run", "-o", weights)
    assert result.exit_code == 2 and "is also an input of this command" in result.output
    assert weights.read_bytes() == b"x"


def test_out_that_is_a_file_is_refused_before_the_plan_is_read(tmp_path):
    out = tmp_path / "r"
    out.write_text("a file")
    result = _cli("run", tmp_path / "missing.json", "--out", out)
    assert result.exit_code == 2
    assert result.output.startswith("error: Invalid value for '--out': ")
    assert "is a file" in result.output
