"""Configuration of the preprocessing job: the typed settings, YAML loading, validation.

A run's configuration is a frozen :class:`Settings` (four sections: ``seed``, ``data``,
``preprocessing``, ``reader``), built once from ``config.yaml``, a ``--config`` file and
the flags, and validated once (:meth:`Settings.of`: one-line errors, :class:`ConfigError`).
Its dataclasses are the one source of the defaults; every key and its meaning is documented
in ``config.yaml`` at the repository root. The Python API also takes a partial nested dict:
missing keys take the defaults.

>>> settings = Settings.of({"preprocessing": {"num_workers": 2}})
>>> settings.data.train_ratio, settings.preprocessing.num_workers
(0.8, 2)
>>> settings.step.blind_reserve_base
12
>>> cfg = validate_config({"preprocessing": {"num_workers": 2}})
>>> cfg["data"]["train_ratio"], cfg["preprocessing"]["num_workers"]
(0.8, 2)
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from imitation_learning.per_file.settings import StepSettings


@dataclass(frozen=True)
class DataSettings:
    """``data``: where the logs are, where the dataset goes, the split fractions."""

    data_root: str = "data/games"
    processed_dir: str = "data/processed"
    train_ratio: float = 0.8
    val_ratio: float = 0.1
    test_ratio: float = 0.1


@dataclass(frozen=True)
class PreprocessingSettings:
    """``preprocessing``: the job's switches, its cluster and its limits."""

    num_workers: int | None = None  # None: all cores
    enable_feature_engineering: bool = True
    enable_masking: bool = True
    scheduler_address: str | None = None  # None: start a local cluster
    dashboard_address: str | None = "127.0.0.1:8787"
    files_per_partition: int | None = None  # None: chosen from the file and worker counts
    max_games: int | None = None
    report: str | None = None
    strict: bool = False
    out_of_core: bool = False  # accepted; the same path as the default (kept for old configs)
    durable: bool = False  # True: X flushed to disk before the save is swapped in
    no_workers_timeout_s: float = 60.0  # a cluster without any worker this long fails the run


@dataclass(frozen=True)
class ReaderSettings:
    """``reader``: how the logs are read."""

    blind_reserve_base: int = 12


@dataclass(frozen=True)
class Settings:
    """A run's whole configuration, typed and frozen: the one source of the defaults
    (``config.yaml`` and the README's table are checked against it). Built once, validated
    once (:meth:`of`); the workers get its small per-file part only (:attr:`step`)."""

    seed: int = 42
    data: DataSettings = field(default_factory=DataSettings)
    preprocessing: PreprocessingSettings = field(default_factory=PreprocessingSettings)
    reader: ReaderSettings = field(default_factory=ReaderSettings)

    @classmethod
    def of(cls, config: Settings | Mapping | None) -> Settings:
        """``config`` itself when it is a :class:`Settings` (validated when it was made),
        else the mapping validated (:func:`validate_config`) and typed."""
        if isinstance(config, Settings):
            return config
        full = validate_config(config)
        return cls(
            seed=full["seed"],
            data=DataSettings(**full["data"]),
            preprocessing=PreprocessingSettings(**full["preprocessing"]),
            reader=ReaderSettings(**full["reader"]),
        )

    def as_dict(self) -> dict:
        """The nested dict of the settings (what ``stats.json`` records)."""
        return dataclasses.asdict(self)

    def replace(self, **sections: Mapping) -> Settings:
        """A copy with some keys of some sections changed, validated again
        (``settings.replace(preprocessing={"report": "r.html"})``)."""
        return Settings.of(deep_merge(self.as_dict(), sections))

    @property
    def step(self) -> StepSettings:
        """What the per-file step needs (and the result cache's key is made of)."""
        return StepSettings(
            blind_reserve_base=self.reader.blind_reserve_base,
            enable_masking=self.preprocessing.enable_masking,
            enable_feature_engineering=self.preprocessing.enable_feature_engineering,
            strict=self.preprocessing.strict,
        )


def _section_defaults(cls) -> dict[str, Any]:
    return {f.name: getattr(cls(), f.name) for f in dataclasses.fields(cls)}


#: The defaults as a nested dict, read from :class:`Settings` (their one source).
DEFAULT_CONFIG: dict[str, Any] = {
    "seed": Settings().seed,
    "data": _section_defaults(DataSettings),
    "preprocessing": _section_defaults(PreprocessingSettings),
    "reader": _section_defaults(ReaderSettings),
}


def _schema() -> dict[str, tuple[type, bool]]:
    """Expected type of every leaf, and whether null is allowed, from the dataclasses'
    annotations. ``float`` accepts ints too; ``int`` never accepts a bool."""
    out: dict[str, tuple[type, bool]] = {"seed": (int, False)}
    names = {"int": int, "float": float, "bool": bool, "str": str}
    for section, cls in (("data", DataSettings), ("preprocessing", PreprocessingSettings),
                         ("reader", ReaderSettings)):
        for f in dataclasses.fields(cls):
            kind, _, none = str(f.type).partition(" | ")
            out[f"{section}.{f.name}"] = (names[kind], none == "None")
    return out


_SCHEMA: dict[str, tuple[type, bool]] = _schema()

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


def validate_config(cfg: Settings | Mapping | None) -> dict:
    """Check a (possibly partial) configuration; return it complete, merged over the defaults.

    Raises :class:`ConfigError` listing every problem found: unknown keys (with their dotted
    path and the allowed keys), wrong types, ratios outside [0, 1] or not summing to 1,
    worker and partition counts below 1, a blind-reserve base other than 11 or 12.
    The argument is not modified.
    """
    if cfg is None:
        cfg = {}
    if isinstance(cfg, Settings):
        return cfg.as_dict()
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
