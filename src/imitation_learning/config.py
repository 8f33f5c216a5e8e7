"""Configuration of the preprocessing job: defaults, YAML loading, validation.

A configuration is a nested dict with four sections (``seed``, ``data``, ``preprocessing``,
``reader``); every key and its meaning is documented in ``config.yaml`` at the repository
root. Any partial dict is accepted: missing keys take the values of :data:`DEFAULT_CONFIG`.

>>> cfg = validate_config({"preprocessing": {"num_workers": 2}})
>>> cfg["data"]["train_ratio"], cfg["preprocessing"]["num_workers"]
(0.8, 2)
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG: dict[str, Any] = {
    "seed": 42,
    "data": {
        "data_root": "data/games",
        "processed_dir": "data/processed",
        "train_ratio": 0.8,
        "val_ratio": 0.1,
        "test_ratio": 0.1,
    },
    "preprocessing": {
        "num_workers": None,  # None: all cores
        "enable_feature_engineering": True,
        "enable_masking": True,
        "scheduler_address": None,  # None: start a local cluster
        "dashboard_address": "127.0.0.1:8787",
        "files_per_partition": None,  # None: chosen from the file and worker counts
        "max_games": None,
        "report": None,
        "strict": False,
        "out_of_core": False,  # accepted; the same path as the default (kept for old configs)
        "durable": False,  # True: X flushed to disk before the save is swapped in
        "no_workers_timeout_s": 60.0,  # a cluster without any worker this long fails the run
    },
    "reader": {
        "blind_reserve_base": 12,
    },
}

# Expected type of every leaf, and whether null is allowed. ``float`` accepts ints too;
# ``int`` never accepts a bool.
_SCHEMA: dict[str, tuple[type, bool]] = {
    "seed": (int, False),
    "data.data_root": (str, False),
    "data.processed_dir": (str, False),
    "data.train_ratio": (float, False),
    "data.val_ratio": (float, False),
    "data.test_ratio": (float, False),
    "preprocessing.num_workers": (int, True),
    "preprocessing.enable_feature_engineering": (bool, False),
    "preprocessing.enable_masking": (bool, False),
    "preprocessing.scheduler_address": (str, True),
    "preprocessing.dashboard_address": (str, True),
    "preprocessing.files_per_partition": (int, True),
    "preprocessing.max_games": (int, True),
    "preprocessing.report": (str, True),
    "preprocessing.strict": (bool, False),
    "preprocessing.out_of_core": (bool, False),
    "preprocessing.no_workers_timeout_s": (float, False),
    "preprocessing.durable": (bool, False),
    "reader.blind_reserve_base": (int, False),
}

_RATIOS = ("train_ratio", "val_ratio", "test_ratio")


class ConfigError(ValueError):
    """An invalid configuration; the message lists every problem, one per line."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        head = "invalid configuration" + (f" in {source}" if source else "")
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in self.problems))
        self.one_line = head + ": " + "; ".join(self.problems)


def deep_merge(base: Mapping, override: Mapping) -> dict:
    """A new dict: ``base`` with ``override`` merged in, section by section."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _type_name(expected: type) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[expected]


def _type_ok(value: Any, expected: type) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, expected)


def _unknown_keys(cfg: Mapping, defaults: Mapping, prefix: str = "") -> list[str]:
    problems = []
    for key, value in cfg.items():
        path = f"{prefix}{key}"
        if key not in defaults:
            allowed = ", ".join(sorted(defaults))
            where = f"in section '{prefix[:-1]}'" if prefix else "at the top level"
            problems.append(f"unknown key '{path}' ({where} the allowed keys are: {allowed})")
        elif isinstance(defaults[key], Mapping):
            if isinstance(value, Mapping):
                problems += _unknown_keys(value, defaults[key], path + ".")
            else:
                problems.append(f"'{path}' must be a section (a mapping of keys), got {value!r}")
    return problems


def _get(cfg: Mapping, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def validate_config(cfg: Mapping | None) -> dict:
    """Check a (possibly partial) configuration; return it complete, merged over the defaults.

    Raises :class:`ConfigError` listing every problem found: unknown keys (with their dotted
    path and the allowed keys), wrong types, ratios outside [0, 1] or not summing to 1,
    worker and partition counts below 1, a blind-reserve base other than 11 or 12.
    The argument is not modified.
    """
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, Mapping):
        raise ConfigError([f"the configuration must be a mapping of sections, got {cfg!r}"])
    problems = _unknown_keys(cfg, DEFAULT_CONFIG)
    if problems:  # values of a malformed tree cannot be checked further
        raise ConfigError(problems)
    full = deep_merge(DEFAULT_CONFIG, cfg)

    for dotted, (expected, nullable) in _SCHEMA.items():
        value = _get(full, dotted)
        if value is None and nullable:
            continue
        if not _type_ok(value, expected):
            allowed = _type_name(expected) + (" or null" if nullable else "")
            problems.append(f"'{dotted}' must be {allowed}, got {value!r}")
    if problems:
        raise ConfigError(problems)

    data, pre = full["data"], full["preprocessing"]
    for name in _RATIOS:
        if not 0.0 <= data[name] <= 1.0:  # NaN fails too
            problems.append(f"'data.{name}' must be between 0 and 1, got {data[name]!r}")
    total = sum(data[name] for name in _RATIOS)
    if not problems and not math.isclose(total, 1.0, abs_tol=1e-6):
        problems.append(
            "'data.train_ratio' + 'data.val_ratio' + 'data.test_ratio' must sum to 1, "
            f"got {total:g}"
        )
    for name in ("num_workers", "files_per_partition", "max_games"):
        if pre[name] is not None and pre[name] < 1:
            problems.append(f"'preprocessing.{name}' must be at least 1 (or null), got {pre[name]}")
    if full["reader"]["blind_reserve_base"] not in (11, 12):
        problems.append(
            "'reader.blind_reserve_base' must be 11 (older exporters) or 12, "
            f"got {full['reader']['blind_reserve_base']}"
        )
    for name in ("data_root", "processed_dir"):
        if not data[name].strip():
            problems.append(f"'data.{name}' must not be empty")
    if not pre["no_workers_timeout_s"] > 0:  # NaN fails too
        problems.append(
            "'preprocessing.no_workers_timeout_s' must be a positive number of seconds, "
            f"got {pre['no_workers_timeout_s']!r}"
        )
    for name in ("scheduler_address", "dashboard_address", "report"):
        if pre[name] is not None and not pre[name].strip():
            problems.append(f"'preprocessing.{name}' must not be empty (use null instead)")
    if problems:
        raise ConfigError(problems)
    return full


def load_config(path: str | os.PathLike | None = None) -> dict:
    """Read a YAML configuration, merge it over the defaults and validate it.

    ``path=None`` gives the defaults. An empty file is the defaults too.
    """
    if path is None:
        return validate_config({})
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"configuration file {str(path)!r} not found"]) from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], source=str(path)) from None
    try:
        return validate_config(loaded or {})
    except ConfigError as exc:
        raise ConfigError(exc.problems, source=str(path)) from None
