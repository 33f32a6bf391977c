"""The input layer (advisor/contract/inputs.py): every user file through one door, every
failure one line naming the file and what was expected, never its content (issue 16)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.cli.commands import cli
from advisor.contract.errors import InputError
from advisor.contract.inputs import (
    MAX_INT_DIGITS,
    MAX_JSON_DEPTH,
    check_output,
    checked_file,
    confine,
    parse_json,
    read_json,
    read_text,
)

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT / "examples/profiles/iris_tiny.json"
EXAMPLES = ROOT / "examples"


def one_line_error(result, exit_code: int = 2) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == exit_code, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: "), result.output
    return result.output.strip()


# ----------------------------------------------------------------------------- what a path may be


def test_a_fifo_is_refused_without_opening_it(tmp_path):
    os.mkfifo(tmp_path / "p.json")
    with pytest.raises(
        InputError, match=r"p\.json: is not a regular file \(a FIFO\); expected a JSON file$"
    ):
        read_json(tmp_path / "p.json")


def test_dev_zero_is_refused_as_a_device():
    with pytest.raises(InputError, match=r"^/dev/zero: is not a regular file \(a device\)"):
        read_text("/dev/zero")


def test_a_folder_and_a_symlink_loop_are_refused(tmp_path):
    with pytest.raises(InputError, match="is a folder; expected a file"):
        checked_file(tmp_path)
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(
        InputError, match=r"a: cannot be opened \(too many levels of symbolic links\)"
    ):
        checked_file(tmp_path / "a")


def test_a_file_over_the_limit_is_refused_before_reading(tmp_path):
    (tmp_path / "big.json").write_text(" " * 2048)
    with pytest.raises(
        InputError, match=r"2 KiB is too large; expected a JSON file of at most 1 KiB"
    ):
        read_json(tmp_path / "big.json", max_bytes=1024)


def test_a_wrong_type_for_a_path_names_the_field():
    with pytest.raises(InputError, match=r"^model\.base: got a int; expected a path to a file$"):
        checked_file(3, field="model.base")


# ----------------------------------------------------------------------------- decoding and parsing


def test_text_that_is_not_utf8_gives_the_offset_not_the_content(tmp_path):
    (tmp_path / "rules.toml").write_bytes(b"secret = 'abc'\n\xff\xfe")
    with pytest.raises(InputError) as err:
        read_text(tmp_path / "rules.toml")
    assert str(err.value).endswith(
        "rules.toml: is not UTF-8 text (byte 0xff at offset 15); expected a UTF-8 text file"
    )
    assert "secret" not in str(err.value)


def test_json_nested_deeper_than_the_limit_is_one_line():
    for levels in (MAX_JSON_DEPTH + 1, 100_000):
        with pytest.raises(
            InputError, match=rf"^x\.json: nested more than {MAX_JSON_DEPTH} levels deep"
        ):
            parse_json("[" * levels + "]" * levels, "x.json")
    assert parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, "x.json") is not None


def test_an_integer_of_thousands_of_digits_is_refused_quickly():
    with pytest.raises(
        InputError, match=rf"an integer of 100000 digits; expected at most {MAX_INT_DIGITS}"
    ):
        parse_json('{"n_train": ' + "9" * 100_000 + "}", "x.json")
    assert parse_json("[" + "9" * MAX_INT_DIGITS + "]", "x.json") == [int("9" * MAX_INT_DIGITS)]


def test_nan_is_kept_for_histories_and_refused_where_asked():
    assert parse_json("[NaN]", "h.json")[0] != parse_json("[NaN]", "h.json")[0]
    with pytest.raises(InputError, match="NaN is not a number JSON allows"):
        parse_json("[NaN]", "p.json", allow_nan=False)


# ------------------------------------------------------------------------ numbers in the schemas


@pytest.mark.parametrize(
    ("section", "key", "literal", "message"),
    [
        (
            "optimizer",
            "learning_rate",
            "Infinity",
            "optimizer.learning_rate: input should be a finite number; got inf",
        ),
        (
            "optimizer",
            "learning_rate",
            "1e999",
            "optimizer.learning_rate: input should be a finite number; got inf",
        ),
        (
            "model",
            "dropout",
            "1.0",
            "model.dropout: 1.0 is out of range; expected a value less than 1",
        ),
        (
            None,
            "batch_size",
            "1" + "0" * 22,
            "batch_size: 10000000000000000000000 is out of range; "
            "expected a value less than or equal to 1048576",
        ),
        (
            None,
            "epochs",
            "1000000",
            "epochs: 1000000 is out of range; expected a value less than or equal to 100000",
        ),
        (
            None,
            "seed",
            "-1",
            "seed: -1 is out of range; expected a value greater than or equal to 0",
        ),
    ],
)
def test_plan_numbers_are_finite_and_bounded(tmp_path, section, key, literal, message):
    plan = json.loads((ROOT / "examples/plans/iris_tiny.json").read_text())
    (plan[section] if section else plan)[key] = "__HERE__"
    (tmp_path / "plan.json").write_text(json.dumps(plan).replace('"__HERE__"', literal))
    result = CliRunner().invoke(cli, ["explain", str(tmp_path / "plan.json")])
    assert one_line_error(result) == f"error: {tmp_path / 'plan.json'}: {message}"


def test_an_image_size_too_large_for_xla_is_refused():
    result = CliRunner().invoke(cli, ["profile", "builtin:shapes", "--image-size", "60000x60000"])
    assert (
        one_line_error(result)
        == "error: --image-size: '60000x60000' is too large; expected at most 4096 per side"
    )


@pytest.mark.parametrize(
    "option", [["--max-lr", "inf"], ["--points", "100000"], ["--seeds", "100000"]]
)
def test_lr_find_options_are_bounded(tmp_path, option):
    result = CliRunner().invoke(
        cli, ["lr-find", str(ROOT / "examples/plans/iris_tiny.json"), *option]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"Invalid value for '{option[0]}'" in result.output


# ----------------------------------------------------------------------------- outputs


def test_an_output_under_a_regular_file_is_refused_before_any_work(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    for output in (tmp_path / "file.txt" / "plan.json", tmp_path / "file.txt" / "a" / "plan.json"):
        result = CliRunner().invoke(cli, ["recommend", str(PROFILE), "-o", str(output)])
        assert one_line_error(result).endswith(
            f"{tmp_path / 'file.txt'} is a file, not a folder; expected a path in a folder"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_an_output_equal_to_an_input_is_refused(tmp_path):
    profile = tmp_path / "p.json"
    profile.write_text(PROFILE.read_text())
    result = CliRunner().invoke(cli, ["recommend", str(profile), "-o", str(profile)])
    assert "is also an input of this command" in one_line_error(result)
    assert profile.read_text() == PROFILE.read_text()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in a read-only folder")
def test_an_output_in_a_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(InputError, match="is not writable"):
            check_output(folder / "plan.json")
    finally:
        folder.chmod(0o700)


def test_an_output_in_a_folder_no_one_may_write_is_refused():
    result = CliRunner().invoke(cli, ["recommend", str(PROFILE), "-o", "/proc/self/plan.json"])
    assert (
        one_line_error(result)
        == "error: -o: /proc/self/plan.json: the folder /proc/self is not writable"
    )


def test_a_write_that_fails_after_the_checks_is_one_input_error(tmp_path):
    from advisor.contract.io import write_atomic

    with pytest.raises(InputError, match=r"^/proc/self/x\.json: cannot be written"):
        write_atomic("/proc/self/x.json", "{}")


# ----------------------------------------------------------------------------- data paths


def _plan_reading(path: str) -> dict:
    plan = json.loads((ROOT / "examples/plans/iris_tiny.json").read_text())
    plan["data"]["source"] = {"kind": "csv", "path": path, "target": "y"}
    return plan


def test_a_system_file_as_data_never_has_its_content_in_the_error(tmp_path):
    (tmp_path / "plan.json").write_text(json.dumps(_plan_reading("/etc/passwd")))
    result = CliRunner().invoke(
        cli, ["run", str(tmp_path / "plan.json"), "--out", str(tmp_path / "out")]
    )
    message = one_line_error(result)
    assert "root:" not in message and "/bin/" not in message.replace("/etc/passwd", "")
    assert not (tmp_path / "out").exists()


def test_data_root_confines_data_paths(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "plan.json").write_text(json.dumps(_plan_reading("/etc/passwd")))
    result = CliRunner().invoke(
        cli,
        ["--data-root", str(root), "run", str(root / "plan.json"), "--out", str(tmp_path / "out")],
    )
    assert one_line_error(result) == (
        f"error: data.source.path: /etc/passwd is outside the data root {root}; "
        "move the data there or pass another --data-root"
    )


def test_confine_follows_symlinks_out_of_the_root(tmp_path):
    (tmp_path / "root").mkdir()
    os.symlink("/etc/passwd", tmp_path / "root" / "data.csv")
    with pytest.raises(InputError, match="is outside the data root"):
        confine(tmp_path / "root" / "data.csv", tmp_path / "root", field="data.source.path")
    assert confine(tmp_path / "x.csv", None, field="f") == tmp_path / "x.csv"


# ----------------------------------------------------------------------------- downloads


@pytest.mark.parametrize("name", ["../../etc/passwd", "resnet?x=1", "a/b", "res net", ".hidden"])
def test_timm_names_are_checked_before_they_reach_a_url(name):
    from engine.pretrained.imports import hub_url

    with pytest.raises(InputError, match="is not a timm model name"):
        hub_url(f"timm:{name}")
    assert hub_url("timm:resnet50.a1_in1k").endswith(
        "/timm/resnet50.a1_in1k/resolve/main/model.safetensors"
    )


def test_a_download_over_the_cap_is_refused_and_nothing_is_kept(tmp_path, monkeypatch):
    import engine.pretrained.imports as imports

    monkeypatch.setenv("ADVISOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(imports, "MAX_DOWNLOAD_BYTES", 1 << 20)
    (tmp_path / "big.safetensors").write_bytes(b"\0" * (3 << 20))
    with pytest.raises(InputError, match=r"is larger than 1 MiB"):
        imports.fetch("timm:big", url=(tmp_path / "big.safetensors").as_uri())
    assert list((tmp_path / "cache" / "weights").iterdir()) == []


def test_a_download_that_does_not_match_its_published_hash_is_refused(tmp_path, monkeypatch):
    import hashlib

    import engine.pretrained.imports as imports

    monkeypatch.setenv("ADVISOR_CACHE", str(tmp_path / "cache"))
    body = b"not the weights"
    wrong = tmp_path / "resnet18-00000000.pth"
    wrong.write_bytes(body)
    with pytest.raises(InputError, match="does not match its published hash 00000000"):
        imports.fetch("torchvision:resnet18", url=wrong.as_uri())
    right = tmp_path / f"resnet18-{hashlib.sha256(body).hexdigest()[:8]}.pth"
    right.write_bytes(body)
    assert imports.fetch("torchvision:resnet18", url=right.as_uri()).read_bytes() == body


def test_the_bench_extra_requires_a_torch_without_the_torch_load_flaw():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert "torch>=2.6" in extras["bench"]


# ----------------------------------------------------------------------------- the Python API


@pytest.mark.parametrize(
    "function", ["recommend", "diagnose", "explain", "load_profile", "load_plan"]
)
def test_the_api_called_with_a_wrong_type_is_one_input_error(function):
    import advisor

    with pytest.raises(InputError) as err:
        getattr(advisor, function)(3)
    assert "got a int" in str(err.value) and "\n" not in str(err.value)


def test_data_root_also_confines_model_base(tmp_path):
    from advisor.contract.inputs import set_data_root
    from engine.pretrained.transfer import read_base

    set_data_root(tmp_path)
    try:
        with pytest.raises(InputError, match=r"^model\.base: /etc is outside the data root"):
            read_base("/etc")
    finally:
        set_data_root(None)


@pytest.mark.parametrize(
    "args", [["recommend", "--bogus", "x"], ["recommend"], ["lr-find", "x.json", "--points", "0"]]
)
def test_a_usage_error_is_one_line_and_exit_2(args):
    result = CliRunner().invoke(cli, args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--help" in lines[0]


def test_a_regression_target_too_large_for_float32_is_one_line(tmp_path):
    """Found by the full fuzz run: a target of 4,000 digits overflowed to inf and the
    profile's own schema raised a traceback."""
    rows = ["a,y"] + [f"{i}.5,{i}" for i in range(8)] + ["9.5," + "9" * 4000]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    args = ["profile", str(tmp_path / "data.csv"), "--target", "y", "--task", "regression"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "data.source.target" in result.output and "finite" in result.output
    assert "9999" not in result.output  # the value is never echoed


def test_a_search_whose_plan_no_trial_could_run_writes_nothing(tmp_path):
    """Found by the full fuzz run: a loss parameter the loss does not take failed only
    after the study's journal was written."""
    plan = json.loads((EXAMPLES / "plans" / "wine_random_search.json").read_text())
    plan["loss"]["params"] = {"learning_rate": 0.1}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["search", str(tmp_path / "plan.json"), "--out", str(out)])
    assert result.exit_code == 2
    assert "loss.params" in result.output
    assert not out.exists()


def test_a_rule_example_with_a_table_for_a_number_is_named_without_its_content(tmp_path):
    """Found by the full fuzz run: a rule check error quoted a whole table (a 4,000-digit
    key); a value of the wrong type is named by its type."""
    rules = tmp_path / "rules"
    rules.mkdir()
    secret = "k" + "9" * 300
    (rules / "team.toml").write_text(
        "[steps_from_a_table]\n"
        'recommend = { "steps_per_epoch" = { ceil_div = ["n_train", 32] } }\n'
        "priority = 100\n"
        'reason = "a test"\n'
        'source = "a test"\n'
        'example = { task = "multiclass", modality = "tabular", input_shape = [4], '
        f"n_classes = 3, n_train = {{ {secret} = 1 }} }}\n"
    )
    result = CliRunner().invoke(cli, ["rules", "check", "--rules", str(rules)])
    assert result.exit_code == 2
    assert "steps_from_a_table" in result.output
    assert secret not in result.output


def test_a_search_of_a_plan_without_data_writes_nothing(tmp_path):
    """Found by the full fuzz run: the journal was written before the plan was found dataless."""
    plan = json.loads((EXAMPLES / "plans" / "wine_random_search.json").read_text())
    plan["data"]["source"] = None
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["search", str(tmp_path / "plan.json"), "--out", str(out)])
    assert result.exit_code == 2
    assert "data.source" in result.output
    assert not out.exists()
