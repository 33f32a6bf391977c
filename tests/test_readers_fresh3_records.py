"""Readers on the fresh3 corpus files that did not read (or lost their loss) before: JSON
arrays of per-epoch records, per-split history dicts, history dicts beside per-episode
records, GAN-style ``Loss <head>:`` logs and a bare ``loss x`` next to ``name: x`` pairs.
Each file is as its project published it (tests/corpus/entries/<id>/, labelled there);
every expected value comes from an independent parse of that file."""

from __future__ import annotations

import json
import re
from pathlib import Path

from advisor.readers import load_history

CORPUS = Path(__file__).parent / "corpus" / "entries"


def test_json_array_of_epoch_records_with_loss_heads():
    path = CORPUS / "e_other_json_majot_triplet_32ep_01" / "train_history.json"
    records = json.loads(path.read_text())
    history = load_history(path)
    assert history.source.format == "json_lines"
    assert history.epochs == [r["epoch"] for r in records]
    assert history.series["loss"] == [r["train_loss"] for r in records]
    assert history.series["val_loss"] == [r["val_loss"] for r in records]
    assert history.series["val_tri_loss"] == [r["val_tri_loss"] for r in records]


def test_json_array_of_epoch_loss_records():
    path = CORPUS / "e_other_json_sam2_lora_5ep_01" / "train_history.json"
    records = json.loads(path.read_text())
    history = load_history(path)
    assert history.epochs == [1, 2, 3, 4, 5]
    assert history.series == {"loss": [r["loss"] for r in records]}


def test_history_saved_per_split():
    """{"train": {"l2": [...]}, "valid": {"l2": [...]}}: one series per split and metric."""
    path = CORPUS / "e_other_json_quant_l2_flat_65ep_01" / "train_history.json"
    data = json.loads(path.read_text())
    history = load_history(path)
    assert history.source.format == "keras_json"
    assert history.epochs == list(range(1, len(data["train"]["l2"]) + 1))
    assert history.series == {"l2": data["train"]["l2"], "val_l2": data["valid"]["l2"]}


def test_series_beside_a_list_of_records_are_read_and_the_records_listed():
    path = CORPUS / "e_other_json_rl_congestion_20ep_01" / "training_history.json"
    data = json.loads(path.read_text())
    history = load_history(path)
    assert history.series["loss"] == data["training_losses"]
    assert history.series["episode_rewards"] == data["episode_rewards"]
    assert any(s.startswith("episode_metrics: a list of records") for s in history.source.skipped)


def test_loss_heads_named_after_the_word_loss():
    """'Epoch 1/1000 - Loss Discriminator: x, Loss Encoder: y, Loss Decoder: z'."""
    path = CORPUS / "e_key_value_text_iae_adversarial_54ep_01" / "training_log.txt"
    rows = re.findall(
        r"Epoch (\d+)/\d+ - Loss Discriminator: (\S+), Loss Encoder: (\S+), Loss Decoder: (\S+)",
        path.read_text(),
    )
    history = load_history(path)
    assert history.epochs == [int(r[0]) for r in rows]
    assert history.series["loss_discriminator"] == [float(r[1]) for r in rows]
    assert history.series["loss_encoder"] == [float(r[2]) for r in rows]
    assert history.series["loss_decoder"] == [float(r[3]) for r in rows]


def test_bare_loss_beside_named_pairs():
    """'Epoch 1, loss 0.69, train accuracy: 54.67%': the loss is read, not only the accuracy."""
    path = CORPUS / "e_key_value_text_minitorch_sentiment_250ep_01" / "training_log.txt"
    text = path.read_text()
    losses = [float(v) for v in re.findall(r"Epoch \d+, loss (\S+),", text)]
    history = load_history(path)
    assert len(history.epochs) == len(losses) == 250
    assert history.series["loss"] == losses
    assert history.series["val_accuracy"][0] == float(
        re.search(r"Validation accuracy: (\S+)%", text)[1]
    )


def test_chinese_epoch_summary_gives_the_validation_loss():
    """'Epoch 16 完成 | 训练损失: 4.6130 | 验证损失: 6.0073' after per-batch 'Loss:' lines."""
    path = CORPUS / "e_key_value_text_transformer_ende_resumed_01" / "training_log.txt"
    rows = re.findall(
        r"Epoch (\d+) 完成 \| 训练损失: (\S+) \| 验证损失: (\S+) \|", path.read_text()
    )
    history = load_history(path)
    assert history.epochs == [int(r[0]) for r in rows]
    assert history.series["loss"] == [float(r[1]) for r in rows]
    assert history.series["val_loss"] == [float(r[2]) for r in rows]
