"""What the per-file step needs of a run's settings: the small part the workers receive,
and of which the result cache's key is made (``strict`` aside: it stops a run, it does not
change a file's result)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from splendor import columns as C

#: The reader's canonical blind-reserve base (``reader.blind_reserve_base``'s default).
DEFAULT_BLIND_RESERVE_BASE = C.CANONICAL_BLIND_BASE


@dataclass(frozen=True)
class StepSettings:
    """The per-file step's settings (``reader.blind_reserve_base``,
    ``preprocessing.enable_masking``, ``preprocessing.enable_feature_engineering``,
    ``preprocessing.strict``)."""

    blind_reserve_base: int = DEFAULT_BLIND_RESERVE_BASE
    enable_masking: bool = True
    enable_feature_engineering: bool = True
    strict: bool = False

    @classmethod
    def of(cls, config: StepSettings | Mapping | None) -> StepSettings:
        """The step's settings of a run's settings, of a configuration dict (missing
        sections or keys: the defaults) or of None."""
        if isinstance(config, StepSettings):
            return config
        step = getattr(config, "step", None)  # a run's typed settings
        if isinstance(step, StepSettings):
            return step
        config = config or {}
        reader = config.get("reader") or {}
        pre = config.get("preprocessing") or {}
        return cls(
            blind_reserve_base=reader.get("blind_reserve_base", DEFAULT_BLIND_RESERVE_BASE),
            enable_masking=bool(pre.get("enable_masking", True)),
            enable_feature_engineering=bool(pre.get("enable_feature_engineering", True)),
            strict=bool(pre.get("strict", False)),
        )

    def cache_key(self) -> str:
        """The result cache's part of a file's key: the settings that change its result."""
        return json.dumps(
            {
                "preprocessing.enable_feature_engineering": self.enable_feature_engineering,
                "preprocessing.enable_masking": self.enable_masking,
                "reader.blind_reserve_base": self.blind_reserve_base,
            },
            sort_keys=True,
        )
