"""Live logs: the TensorBoard writer's files read back with the project's own reader."""

import csv

from advisor.readers import tfevents
from engine.live_log import CsvLog, EventWriter


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
