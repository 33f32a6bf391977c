"""Live logs: the TensorBoard writer's files read back with the project's own reader."""

import csv

import pytest

from advisor.readers.tensorboard import tfevents
from engine.outputs.live_log import CsvLog, EventWriter


def test_event_writer_output_reads_back_with_the_project_reader(tmp_path):
    writer = EventWriter(tmp_path)
    writer.scalars(0, {"loss": 2.5, "val_loss": 2.75})
    writer.scalars(1, {"loss": 1.25, "val_loss": -0.5})
    writer.close()
    data = writer.path.read_bytes()
    assert tfevents.is_events_file(data[:12])
    found = []
    for _, payload, problem in tfevents.records(data):
        assert problem is None
        found += [(s.tag, s.step, s.value) for s in tfevents.scalars(payload)]
    assert found == [
        ("loss", 0, 2.5),
        ("val_loss", 0, 2.75),
        ("loss", 1, 1.25),
        ("val_loss", 1, -0.5),
    ]
    assert writer.path.stat().st_mode & 0o777 == 0o644


def test_csv_log_has_keras_columns_and_appends_across_a_restart(tmp_path):
    path = tmp_path / "history.csv"
    log = CsvLog(path)
    log.append(0, {"val_loss": 1.5, "loss": 2.0})
    CsvLog(path, append=True).append(1, {"loss": 1.0, "val_loss": 1.25})
    rows = list(csv.reader(path.open()))
    assert rows == [["epoch", "loss", "val_loss"], ["0", "2.0", "1.5"], ["1", "1.0", "1.25"]]


def test_both_live_logs_are_recognised_by_diagnose_loader(tmp_path):
    from advisor.readers import load_history

    log, writer = CsvLog(tmp_path / "history.csv"), EventWriter(tmp_path / "tb")
    for epoch in range(3):
        logs = {"loss": 2.0 - 0.5 * epoch, "val_loss": 2.0 - 0.25 * epoch}
        log.append(epoch, logs)
        writer.scalars(epoch, logs)
    writer.close()
    from_csv, from_events = load_history(log.path), load_history(writer.path)
    assert from_csv.source.format == "keras_csv"
    assert from_events.source.format == "tensorboard"
    assert from_csv.series == from_events.series


# ----------------------------------------------------------------------------- during a run


def test_a_run_writes_csv_and_events_each_epoch_and_a_line_outside_a_terminal(tmp_path, capsys):
    import json

    from advisor.workflows.running import run
    from tests.engine_plans import make_plan

    seen = []

    def watch(state, logs):
        # during the run, after the epoch: the live files already hold it
        rows = list(csv.reader((tmp_path / "r" / "history.csv").open()))
        seen.append((state.epoch, len(rows) - 1, rows[-1][0]))
        return False

    result = run(make_plan(epochs=3), tmp_path / "r", callbacks=[watch], progress=False)
    assert seen == [(1, 1, "0"), (2, 2, "1"), (3, 3, "2")]  # the live logs run first
    history = json.loads((tmp_path / "r" / "history.json").read_text())
    rows = list(csv.DictReader((tmp_path / "r" / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert [float(r["val_loss"]) for r in rows] == history["series"]["val_loss"]
    (events,) = (tmp_path / "r").glob("events.out.tfevents.*")
    found = {}
    for _, payload, problem in tfevents.records(events.read_bytes()):
        assert problem is None
        for s in tfevents.scalars(payload):
            found.setdefault(s.tag, []).append((s.step, s.value))
    assert [step for step, _ in found["loss"]] == [0, 1, 2]
    # float32 on the wire
    assert [v for _, v in found["loss"]] == pytest.approx(history["series"]["loss"], rel=1e-6)
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("epoch ")]
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3  loss ")
    assert "val_accuracy" in lines[0] and lines[0].endswith("samples/s")
    assert set(result.timing) == {"elapsed_s", "compile_s", "samples_per_s"}
    assert 0 <= result.timing["compile_s"] and 0 < result.timing["elapsed_s"]


def test_a_callback_can_stop_the_run_and_sees_the_training_state(tmp_path):
    from advisor.workflows.running import run
    from tests.engine_plans import make_plan

    class StopAtTwo:
        def on_epoch_end(self, state, logs):
            assert "head" in state.state.params and state.result.epochs[-1] == state.epoch
            return state.epoch == 2

    result = run(make_plan(epochs=5), tmp_path / "r", callbacks=[StopAtTwo()], progress=False)
    assert (
        result.stopped_early and result.stopped_reason == "stopped by callback StopAtTwo at epoch 2"
    )
    rows = list(csv.reader((tmp_path / "r" / "history.csv").open()))
    assert len(rows) == 3


def test_compile_cache_settings(tmp_path, monkeypatch):
    from engine.runtime.compile_cache import default_cache_dir, enable_compile_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "advisor" / "jax"
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "session"))
    assert enable_compile_cache() == str(tmp_path / "session")  # an explicit JAX setting wins
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    monkeypatch.setenv("ADVISOR_COMPILE_CACHE", "0")
    assert enable_compile_cache() is None
