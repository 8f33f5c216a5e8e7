"""Configuration: defaults, deep merge, YAML loading, one clear message per problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from imitation_learning.config import DEFAULT_CONFIG, ConfigError, load_config, validate_config

REPO = Path(__file__).resolve().parents[1]


def test_defaults():
    cfg = validate_config({})
    assert cfg == DEFAULT_CONFIG
    assert cfg["seed"] == 42
    assert cfg["data"] == {
        "data_root": "data/games",
        "processed_dir": "data/processed",
        "train_ratio": 0.8,
        "val_ratio": 0.1,
        "test_ratio": 0.1,
    }
    pre = cfg["preprocessing"]
    assert pre["num_workers"] is None and pre["scheduler_address"] is None
    assert pre["dashboard_address"] == "127.0.0.1:8787"
    assert pre["enable_feature_engineering"] is True and pre["enable_masking"] is True
    assert pre["files_per_partition"] is None and pre["max_games"] is None
    assert pre["report"] is None and pre["strict"] is False
    assert cfg["reader"]["blind_reserve_base"] == 12
    assert validate_config(None) == DEFAULT_CONFIG


def test_partial_config_is_merged_and_input_untouched():
    partial = {"data": {"data_root": "elsewhere"}, "preprocessing": {"num_workers": 4}}
    cfg = validate_config(partial)
    assert cfg["data"]["data_root"] == "elsewhere"
    assert cfg["data"]["train_ratio"] == 0.8
    assert cfg["preprocessing"]["num_workers"] == 4
    assert cfg["preprocessing"]["enable_masking"] is True
    assert partial == {"data": {"data_root": "elsewhere"}, "preprocessing": {"num_workers": 4}}
    cfg["data"]["train_ratio"] = 0.5  # the defaults are not shared with the result
    assert DEFAULT_CONFIG["data"]["train_ratio"] == 0.8


def test_validate_is_idempotent():
    cfg = validate_config({"reader": {"blind_reserve_base": 11}})
    assert validate_config(cfg) == cfg


def _problems(cfg) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    return info.value.problems


def test_unknown_key_names_its_path_and_the_allowed_keys():
    (msg,) = _problems({"preprocessing": {"num_worker": 2}})
    assert "'preprocessing.num_worker'" in msg
    assert "num_workers" in msg and "scheduler_address" in msg
    (msg,) = _problems({"dta": {}})
    assert "'dta'" in msg and "data" in msg and "preprocessing" in msg


def test_section_must_be_a_mapping():
    (msg,) = _problems({"data": "data/games"})
    assert "'data'" in msg and "section" in msg


@pytest.mark.parametrize(
    "cfg, where",
    [
        ({"seed": "42"}, "'seed'"),
        ({"seed": True}, "'seed'"),
        ({"preprocessing": {"num_workers": 2.0}}, "'preprocessing.num_workers'"),
        ({"preprocessing": {"num_workers": True}}, "'preprocessing.num_workers'"),
        ({"preprocessing": {"enable_masking": "yes"}}, "'preprocessing.enable_masking'"),
        ({"data": {"data_root": None}}, "'data.data_root'"),
        ({"data": {"train_ratio": "0.8"}}, "'data.train_ratio'"),
        ({"preprocessing": {"dashboard_address": 8787}}, "'preprocessing.dashboard_address'"),
    ],
)
def test_wrong_type(cfg, where):
    (msg,) = _problems(cfg)
    assert where in msg and "must be" in msg


def test_ratios():
    (msg,) = _problems({"data": {"train_ratio": 0.7}})
    assert "sum to 1" in msg
    (msg,) = _problems({"data": {"train_ratio": 1.5, "val_ratio": -0.25, "test_ratio": -0.25}})[:1]
    assert "'data.train_ratio'" in msg and "between 0 and 1" in msg
    cfg = validate_config({"data": {"train_ratio": 1, "val_ratio": 0, "test_ratio": 0}})
    assert cfg["data"]["train_ratio"] == 1
    validate_config({"data": {"train_ratio": 0.7, "val_ratio": 0.2, "test_ratio": 0.1}})


@pytest.mark.parametrize("key", ["num_workers", "files_per_partition", "max_games"])
def test_counts_at_least_one(key):
    (msg,) = _problems({"preprocessing": {key: 0}})
    assert f"'preprocessing.{key}'" in msg and "at least 1" in msg


def test_blind_reserve_base():
    (msg,) = _problems({"reader": {"blind_reserve_base": 13}})
    assert "'reader.blind_reserve_base'" in msg and "11" in msg and "12" in msg


def test_every_problem_is_reported_once():
    problems = _problems(
        {"preprocessing": {"num_workers": 0, "max_games": -1}, "reader": {"blind_reserve_base": 10}}
    )
    assert len(problems) == 3
    text = str(ConfigError(problems))
    assert text.count("\n  - ") == 3


def test_load_config(tmp_path):
    assert load_config() == DEFAULT_CONFIG
    path = tmp_path / "c.yaml"
    path.write_text("preprocessing:\n  num_workers: 3\nreader:\n  blind_reserve_base: 11\n")
    cfg = load_config(path)
    assert cfg["preprocessing"]["num_workers"] == 3
    assert cfg["reader"]["blind_reserve_base"] == 11
    assert cfg["data"] == DEFAULT_CONFIG["data"]
    (tmp_path / "empty.yaml").write_text("")
    assert load_config(tmp_path / "empty.yaml") == DEFAULT_CONFIG


def test_load_config_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("preprocessing:\n  num_workers: many\n")
    with pytest.raises(ConfigError, match="bad.yaml") as info:
        load_config(bad)
    assert "'preprocessing.num_workers'" in str(info.value)
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_repo_config_yaml_documents_every_key_with_the_defaults():
    path = REPO / "config.yaml"
    raw = yaml.safe_load(path.read_text())
    assert raw == DEFAULT_CONFIG  # every key present, same values as the defaults
    assert load_config(path) == DEFAULT_CONFIG
    # every key (or group of consecutive keys) has a comment right above it
    lines = [line.strip() for line in path.read_text().splitlines()]
    keys = [i for i, line in enumerate(lines) if line and not line.startswith("#")]
    for i in keys:
        if lines[i].endswith(":"):  # a section header
            continue
        before = lines[i - 1]
        assert before.startswith("#") or i - 1 in keys, f"undocumented key: {lines[i]!r}"
    assert sum(line.startswith("#") for line in lines) > len(keys)


# --------------------------------------------------------------------------- one source


def _leaves(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _readme_defaults() -> dict[str, str]:
    """key -> default text of the README's configuration table (``{a,b}`` expanded)."""
    import re

    text = (REPO / "README.md").read_text()
    table = text[text.index("| key | default | meaning |"):].split("\n\n")[0]
    out = {}
    for line in table.splitlines()[2:]:
        key, default = (cell.strip() for cell in line.strip("|").split("|")[:2])
        key = key.strip("`")
        names = re.match(r"(.*)\{(.*)\}(.*)", key)
        if names:
            values = [v.strip() for v in default.split("/")]
            for name, value in zip(names.group(2).split(","), values, strict=True):
                out[names.group(1) + name + names.group(3)] = value
        else:
            out[key] = default
    return out


def test_config_yaml_and_the_readme_table_show_the_settings_defaults():
    """``config.yaml`` and the README's table: every key of :class:`Settings`, each with
    the default of the dataclasses (the one source of the defaults)."""
    from imitation_learning.config import Settings

    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    defaults = _leaves(Settings().as_dict())
    assert _leaves(shipped) == defaults
    assert Settings.of(shipped) == Settings()
    assert _leaves(DEFAULT_CONFIG) == defaults

    table = _readme_defaults()
    assert set(table) == set(defaults)
    for key, value in defaults.items():
        text = table[key].strip("`")
        if value is None:
            assert text in ("none", "all cores", "auto", "all"), key
        elif isinstance(value, bool):
            assert text == str(value).lower(), key
        elif isinstance(value, (int, float)):
            assert float(text) == value, key
        else:
            assert text == value, key
