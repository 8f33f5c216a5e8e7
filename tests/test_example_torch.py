"""``examples/train_torch.py`` trains on the saved dataset of the bundled games.

Runs only where PyTorch is importable: it is in the optional ``torch`` dependency group,
which the job does not need. ``.ci/run`` installs a CPU build when the machine has one on
disk; elsewhere, see examples/README.md for how to install it and run this test.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from game_data import pipeline_config
from imitation_learning.data_preprocessing import run_preprocessing

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (optional group 'torch', see examples/README.md)"
)

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = REPO_ROOT / "examples" / "train_torch.py"
HEADS = ("action_type", "card_selection", "card_reservation", "gem_take3", "gem_take2",
         "noble", "gems_removed")


def load_example():
    spec = importlib.util.spec_from_file_location("train_torch", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_trains_one_epoch_on_the_bundled_games(tmp_path, capsys):
    out = tmp_path / "processed"
    run_preprocessing(pipeline_config(REPO_ROOT / "data" / "games", out), progress=False)
    example = load_example()
    assert example.HEADS == HEADS
    result = example.main([str(out), "--epochs", "1", "--hidden", "64"])
    printed = capsys.readouterr().out
    assert len(result["losses"]) == 1 and math.isfinite(result["losses"][0])
    assert "input_dim " in printed
    for split in ("val", "test"):
        for head in HEADS:
            score = result[split][head]
            assert head in printed
            if score["rows"]:
                assert 0.0 <= score["accuracy"] <= 1.0
                assert 0.0 < score["random_legal"] <= 1.0
    # action_type is labelled on every row, and one epoch beats a random legal choice
    assert result["test"]["action_type"]["accuracy"] > result["test"]["action_type"]["random_legal"]
