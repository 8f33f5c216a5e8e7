"""Train a masked multi-head network on a saved dataset with PyTorch, and report accuracy.

The dataset is what ``splendor-il preprocess`` writes (``data/processed`` by default):

    X_{train,val,test}.npy     float32 (rows, input_dim), already standardised
    labels_{split}.npz         head -> int16 (rows,), -1 where the head does not apply
    masks_{split}.npz          head -> bool (rows, classes), the legal classes of each row
    preprocessing_stats.json   input_dim, split sizes, legal classes per head

This script reads those files with NumPy alone (no import of this project), so it doubles as
a template for training code of your own. The network is a small shared trunk with one
linear output per head. Illegal classes are removed before the softmax (their logits set
to a large negative number), both in the loss and when predicting, so a prediction is
always a legal move. Rows whose label is -1 do not count for that head.

    uv run --group torch python examples/train_torch.py data/processed --epochs 5

Prints the training loss of each epoch, then per head the accuracy on the validation and
test rows next to the accuracy of picking a legal class at random.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HEADS = (
    "action_type",
    "card_selection",
    "card_reservation",
    "gem_take3",
    "gem_take2",
    "noble",
    "gems_removed",
)
SPLITS = ("train", "val", "test")
#: Logit given to an illegal class: far below any real logit, yet finite (a row whose mask
#: is all False, for a head that does not apply, then gives no NaN).
ILLEGAL = -1e9


def load_split(folder: Path, split: str) -> tuple[np.ndarray, dict, dict]:
    """X, labels and masks of one split."""
    X = np.load(folder / f"X_{split}.npy", allow_pickle=False)
    with np.load(folder / f"labels_{split}.npz", allow_pickle=False) as z:
        labels = {h: z[h].astype(np.int64) for h in HEADS}
    with np.load(folder / f"masks_{split}.npz", allow_pickle=False) as z:
        masks = {h: z[h].astype(bool) for h in HEADS}
    return X, labels, masks


class MultiHeadNet(nn.Module):
    """A shared trunk (two hidden layers) and one linear layer per head."""

    def __init__(self, input_dim: int, classes: dict[str, int], hidden: int = 256):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Linear(input_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.heads = nn.ModuleDict({h: nn.Linear(hidden, n) for h, n in classes.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.trunk(x)
        return {h: layer(z) for h, layer in self.heads.items()}


def masked(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return logits.masked_fill(~mask, ILLEGAL)


def tensors(X: np.ndarray, labels: dict, masks: dict) -> tuple:
    return (
        torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)),
        {h: torch.from_numpy(labels[h]) for h in HEADS},
        {h: torch.from_numpy(masks[h]) for h in HEADS},
    )


def train_epoch(model, optimiser, data, batch_size: int, generator) -> float:
    """One pass over the train rows in a random order; the mean loss per batch."""
    X, labels, masks = data
    model.train()
    order = torch.randperm(len(X), generator=generator)
    loss_fn = nn.CrossEntropyLoss(ignore_index=-1, reduction="sum")
    total, batches = 0.0, 0
    for start in range(0, len(X), batch_size):
        rows = order[start : start + batch_size]
        out = model(X[rows])
        loss = torch.zeros(())
        counted = 0
        for h in HEADS:
            y = labels[h][rows]
            n = int((y >= 0).sum())
            if n:
                loss = loss + loss_fn(masked(out[h], masks[h][rows]), y)
                counted += n
        if not counted:
            continue
        loss = loss / counted
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total += loss.item()
        batches += 1
    return total / max(batches, 1)


@torch.no_grad()
def accuracy(model, data) -> dict[str, dict]:
    """Per head: rows with a label, the model's accuracy (masked argmax) and the accuracy of
    a uniformly random legal class."""
    X, labels, masks = data
    model.eval()
    out = model(X)
    result = {}
    for h in HEADS:
        y, m = labels[h], masks[h]
        rows = y >= 0
        n = int(rows.sum())
        if not n:
            result[h] = {"rows": 0, "accuracy": None, "random_legal": None}
            continue
        pred = masked(out[h][rows], m[rows]).argmax(dim=1)
        legal = m[rows].sum(dim=1).clamp(min=1).double()
        result[h] = {
            "rows": n,
            "accuracy": float((pred == y[rows]).double().mean()),
            "random_legal": float((1.0 / legal).mean()),
        }
    return result


def run(folder: Path, *, epochs: int, batch_size: int, lr: float, hidden: int,
        seed: int) -> dict:
    """Train on ``folder``'s train rows; returns the losses and the val and test accuracy."""
    summary = json.loads((folder / "preprocessing_stats.json").read_text(encoding="utf-8"))
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    data = {s: tensors(*load_split(folder, s)) for s in SPLITS}
    input_dim = summary["input_dim"]
    if data["train"][0].shape[1] != input_dim:
        raise SystemExit(f"X_train has {data['train'][0].shape[1]} columns, input_dim {input_dim}")
    classes = {h: data["train"][2][h].shape[1] for h in HEADS}
    model = MultiHeadNet(input_dim, classes, hidden)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    print(
        f"{folder}: input_dim {input_dim}, rows "
        + ", ".join(f"{s} {summary[f'{s}_size']:,}" for s in SPLITS)
    )
    losses = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        losses.append(train_epoch(model, optimiser, data["train"], batch_size, generator))
        print(f"epoch {epoch}: loss {losses[-1]:.4f} ({time.perf_counter() - t0:.1f} s)")
    scores = {s: accuracy(model, data[s]) for s in ("val", "test")}
    print(f"\n{'head':<17} {'rows':>6} {'val acc':>8} {'test acc':>9} {'random legal':>13}")
    for h in HEADS:
        v, t = scores["val"][h], scores["test"][h]
        fmt = lambda a: "-" if a is None else f"{a:.3f}"  # noqa: E731
        print(f"{h:<17} {v['rows']:>6} {fmt(v['accuracy']):>8} {fmt(t['accuracy']):>9} "
              f"{fmt(t['random_legal']):>13}")
    return {"losses": losses, **scores}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", nargs="?", default="data/processed", type=Path,
                        help="the folder splendor-il preprocess wrote (default: data/processed)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--hidden", type=int, default=256, help="width of the hidden layers")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return run(args.dataset, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
               hidden=args.hidden, seed=args.seed)


if __name__ == "__main__":
    main()
