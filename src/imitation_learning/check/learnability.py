"""Learnability of a saved dataset: does X predict the logged decisions better than chance?

:func:`check_learnability` trains, per head, a small masked classifier on a seeded sample of
the train rows and reports its top-1 accuracy on a seeded sample of the test rows, next to
three baselines that do not look at X:

- **majority**: always the most frequent train class;
- **majority (legal)**: the most frequent train class among the row's legal classes (the
  class prior under the same mask as the model; never worse than plain majority, which is
  wrong whenever the majority class is illegal);
- **uniform (legal)**: a uniform choice among the row's legal classes (expected accuracy:
  the mean of 1 / number of legal classes).

The margin is the model's accuracy minus the best baseline. The masked majority is the one
that matters: a model whose output is masked gets the class prior under the mask for free,
so when the rows of X are out of step with the labels (shuffled) the model lands on the
masked majority, far above the plain majority and the uniform choice on heads such as
``action_type`` whose decision is mostly fixed by what is legal (the greedy agent builds
whenever a build is legal). Only the gain over the masked majority is what X brings.

The classifier is softmax regression with the illegal classes masked out of the softmax
(their logits set to -inf, so they get probability 0 and no gradient): p(c | x) =
exp(w_c.x + b_c) / sum over legal c' of exp(w_c'.x + b_c'). It is written in numpy (about 40
lines) rather than taken from scikit-learn: scikit-learn's logistic regression normalises
over every class and has no per-row class mask, and it would be a new dependency of the
project for one model. Training: inputs standardised on the train sample and clipped to
+-5 (a rare value of a sparse column would otherwise dominate), weights from zero, minibatch
gradient descent with momentum, the step decayed linearly to zero, a small L2 penalty, a
fixed number of epochs, every random choice from ``seed``, on one BLAS thread
(``threadpoolctl``). Rows with a single legal class teach nothing (their gradient is zero)
and are left out of training; rows whose label is -1 (head not applicable), out of range or
outside its mask, and rows of X with a non-finite value, are left out of training and
evaluation.

Memory: the train sample is held once (float32, ``max_rows`` x columns: 260 MB at 50,000
rows of 1,304 columns), shared by the heads through row indices; the test sample is read in
chunks after training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from imitation_learning.check.x_scan import release_pages
from splendor import columns as C

#: Train rows sampled (and test rows evaluated) by default, per split.
DEFAULT_MAX_ROWS = 50_000
DEFAULT_EPOCHS = 6
DEFAULT_SEED = 0
BATCH_ROWS = 512
LEARNING_RATE = 0.1  # at the first step, decayed linearly to 0 at the last
MOMENTUM = 0.9
L2_PENALTY = 1e-4
INPUT_CLIP = 5.0  # standardised inputs are clipped to [-5, 5]
_CHUNK_ROWS = 4096  # rows gathered from a memory-mapped X at a time


@dataclass
class HeadResult:
    """Accuracy of the classifier and of the baselines on one head's test rows (None: not
    measured, ``note`` says why)."""

    head: str
    classes: int
    train_rows: int = 0
    test_rows: int = 0
    accuracy: float | None = None
    majority: float | None = None
    uniform_legal: float | None = None
    masks_only: float | None = None
    note: str = ""

    @property
    def best_baseline(self) -> float | None:
        values = [self.majority, self.uniform_legal, self.masks_only]
        return None if None in values else max(values)

    @property
    def margin(self) -> float | None:
        """Accuracy minus the best baseline."""
        if self.accuracy is None or self.best_baseline is None:
            return None
        return self.accuracy - self.best_baseline

    def to_dict(self) -> dict:
        return {**asdict(self), "best_baseline": self.best_baseline, "margin": self.margin}


@dataclass
class MaskedSoftmax:
    """A trained model: ``logits = clip((x - mu) / sd) @ weights + bias``, masked."""

    mu: np.ndarray
    sd: np.ndarray
    weights: np.ndarray
    bias: np.ndarray

    def predict(self, X: np.ndarray, legal: np.ndarray) -> np.ndarray:
        """The most probable legal class of each row of ``X`` (raw rows of the dataset)."""
        logits = standardise(X, self.mu, self.sd) @ self.weights + self.bias
        return np.where(legal, logits, -np.inf).argmax(axis=1)


def input_scaling(X: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and standard deviation of ``X`` (of its ``rows``, a bool mask: default
    all), float32, sd 1 for a constant column; by chunks of rows (float64 accumulators, no
    full-size temporary)."""
    total, sq, count = np.zeros(X.shape[1]), np.zeros(X.shape[1]), 0
    for start in range(0, len(X), _CHUNK_ROWS):
        chunk = X[start : start + _CHUNK_ROWS]
        if rows is not None:
            chunk = chunk[rows[start : start + _CHUNK_ROWS]]
        chunk = chunk.astype(np.float64)
        count += len(chunk)
        total += chunk.sum(axis=0)
        sq += np.einsum("ij,ij->j", chunk, chunk)
    mean = total / max(count, 1)
    var = np.maximum(sq / max(count, 1) - mean**2, 0.0)
    sd = np.sqrt(var).astype(np.float32)
    sd[sd <= 1e-6 * np.maximum(1.0, np.abs(mean))] = 1.0  # constant (up to rounding)
    return mean.astype(np.float32), sd


def standardise(X: np.ndarray, mu: np.ndarray, sd: np.ndarray, *, out=None) -> np.ndarray:
    """``clip((X - mu) / sd, -INPUT_CLIP, INPUT_CLIP)`` (in place when ``out is X``)."""
    Z = np.subtract(X, mu, out=out)
    Z /= sd
    return np.clip(Z, -INPUT_CLIP, INPUT_CLIP, out=Z)


def fit_masked_softmax(
    Z: np.ndarray,
    y: np.ndarray,
    legal: np.ndarray,
    *,
    rows: np.ndarray | None = None,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = DEFAULT_SEED,
    batch_rows: int = BATCH_ROWS,
    learning_rate: float = LEARNING_RATE,
    l2: float = L2_PENALTY,
    on_epoch: Callable[[], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Weights (F, K) and bias (K,) of softmax regression of ``y`` on the standardised
    inputs ``Z`` (float32 (n, F)), the softmax over each row's ``legal`` classes (bool
    (n, K)) only; ``y[i]`` must be legal in row i. ``rows``: the rows of ``Z`` / ``y`` /
    ``legal`` to train on (default all)."""
    rows = np.arange(len(Z)) if rows is None else np.asarray(rows)
    k = legal.shape[1]
    rng = np.random.default_rng(seed)
    W = np.zeros((Z.shape[1], k), dtype=np.float32)
    b = np.zeros(k, dtype=np.float32)
    vel_W, vel_b = np.zeros_like(W), np.zeros_like(b)
    steps_per_epoch = -(-len(rows) // batch_rows)
    total_steps = max(1, epochs * steps_per_epoch)
    step = 0
    for _ in range(epochs):
        order = rows[rng.permutation(len(rows))]
        for start in range(0, len(order), batch_rows):
            batch = order[start : start + batch_rows]
            zb, yb = Z[batch], y[batch]
            logits = np.where(legal[batch], zb @ W + b, -np.inf)
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(batch)), yb] -= 1.0  # d(-log p_y) / d logits
            p /= len(batch)
            rate = learning_rate * (1.0 - step / total_steps)
            vel_W *= MOMENTUM
            vel_W += zb.T @ p + l2 * W
            vel_b *= MOMENTUM
            vel_b += p.sum(axis=0)
            W -= rate * vel_W
            b -= rate * vel_b
            step += 1
        if on_epoch is not None:
            on_epoch()
    return W, b


def sample_rows(n: int, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``max_rows`` of ``n`` rows, drawn without replacement."""
    if n <= max_rows:
        return np.arange(n)
    return np.sort(rng.choice(n, size=max_rows, replace=False))


def gather_rows(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``X[rows]`` (sorted rows) as float32 in memory, read in chunks from a memory-mapped X
    whose pages are released as it goes."""
    out = np.empty((len(rows), X.shape[1]), dtype=np.float32)
    for start in range(0, len(rows), _CHUNK_ROWS):
        chunk = rows[start : start + _CHUNK_ROWS]
        out[start : start + len(chunk)] = X[chunk]
        release_pages(X, int(chunk[-1]) + 1)
    release_pages(X, len(X))
    return out


def usable_rows(labels: np.ndarray, legal: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Bool over rows: a label that is a class index legal in its own mask, and finite X."""
    k = legal.shape[1]
    lab = labels.astype(np.int64)
    ok = (lab >= 0) & (lab < k) & finite
    rows = np.flatnonzero(ok)
    ok[rows[~legal[rows, lab[rows]]]] = False
    return ok


def baselines(
    train_labels: np.ndarray, test_labels: np.ndarray, test_legal: np.ndarray
) -> tuple[float, float]:
    """Test accuracy of the majority train class, and expected accuracy of a uniform choice
    among each row's legal classes."""
    k = test_legal.shape[1]
    freq = np.bincount(train_labels, minlength=k)
    majority = float((test_labels == freq.argmax()).mean())
    uniform = float((1.0 / test_legal.sum(axis=1)).mean())
    return majority, uniform


def _head_arrays(ds: dict, split: str, head: str, k: int, rows: np.ndarray):
    """Labels and masks of ``rows`` of a split, or None when they do not fit the head."""
    try:
        labels = np.asarray(ds[f"labels_{split}"][head])
        legal = np.asarray(ds[f"masks_{split}"][head]).astype(bool, copy=False)
    except KeyError:
        return None
    if labels.ndim != 1 or legal.ndim != 2 or legal.shape != (len(labels), k):
        return None
    if len(rows) and rows[-1] >= len(labels):
        return None
    return labels[rows], legal[rows]


def check_learnability(
    ds: dict,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: int = DEFAULT_SEED,
    epochs: int = DEFAULT_EPOCHS,
    progress: bool = False,
) -> dict:
    """Train on up to ``max_rows`` train rows, evaluate on up to ``max_rows`` test rows, per
    head; ``ds`` as :func:`imitation_learning.check.shapes.open_dataset` returns it.

    Returns ``{"settings": {...}, "heads": [HeadResult.to_dict(), ...]}``.
    """
    if max_rows < 1 or epochs < 1:
        raise ValueError("max_rows and epochs must be at least 1")
    # One BLAS thread: the products are small (a minibatch by ~1,300 columns by <= 84
    # classes); threads waiting on each other cost more than they bring, and several times
    # the wall time on a busy machine (measured in docs/benchmarks.md).
    with threadpool_limits(limits=1, user_api="blas"):
        return _check_learnability(
            ds, max_rows=max_rows, seed=seed, epochs=epochs, progress=progress
        )


def _check_learnability(ds: dict, *, max_rows: int, seed: int, epochs: int, progress: bool) -> dict:
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    X_train, X_test = ds["X_train"], ds["X_test"]
    shapes_ok = X_train.ndim == 2 and X_test.ndim == 2 and X_train.shape[1] == X_test.shape[1]
    train_idx = sample_rows(len(X_train), max_rows, rng) if shapes_ok else np.zeros(0, int)
    test_idx = sample_rows(len(X_test), max_rows, rng) if shapes_ok else np.zeros(0, int)
    settings = {
        "model": "softmax regression, illegal classes masked out of the softmax (numpy)",
        "max_rows": max_rows,
        "seed": seed,
        "epochs": epochs,
        "batch_rows": BATCH_ROWS,
        "learning_rate": LEARNING_RATE,
        "momentum": MOMENTUM,
        "l2": L2_PENALTY,
        "train_rows_sampled": int(len(train_idx)),
        "train_rows_total": int(len(X_train)),
        "test_rows_sampled": int(len(test_idx)),
        "test_rows_total": int(len(X_test)),
    }
    results = {head: HeadResult(head, k) for head, k in C.HEADS.items()}
    out = {"settings": settings, "heads": results}
    if not shapes_ok:
        for r in results.values():
            r.note = "X_train / X_test unusable (see shapes)"
        return _as_dicts(out)

    # The train sample, standardised in place; the heads share it through row indices.
    Z = gather_rows(X_train, train_idx)
    finite = np.isfinite(Z).all(axis=1)
    mu, sd = input_scaling(Z, finite)
    for start in range(0, len(Z), _CHUNK_ROWS):  # in place, chunk by chunk: no temporary
        block = Z[start : start + _CHUNK_ROWS]
        standardise(block, mu, sd, out=block)
    models: dict[str, MaskedSoftmax] = {}
    mask_biases: dict[str, np.ndarray] = {}
    train_labels: dict[str, np.ndarray] = {}
    with tqdm(
        total=epochs * len(C.HEADS) + len(test_idx),
        desc="check: learnability",
        unit="step",
        disable=not progress,
        leave=False,
    ) as bar:
        for h, (head, k) in enumerate(C.HEADS.items()):
            arrays = _head_arrays(ds, "train", head, k, train_idx)
            if arrays is None:
                results[head].note = "train labels or masks unusable (see shapes)"
                bar.update(epochs)
                continue
            y, legal = arrays
            usable = usable_rows(y, legal, finite)
            results[head].train_rows = int(usable.sum())
            if not usable.any():
                results[head].note = "no labelled train rows"
                bar.update(epochs)
                continue
            train_labels[head] = y[usable].astype(np.int64)
            informative = np.flatnonzero(usable & (legal.sum(axis=1) > 1))
            W, b = fit_masked_softmax(
                Z,
                y.astype(np.int64),
                legal,
                rows=informative,
                epochs=epochs,
                seed=seed + h,
                on_epoch=bar.update,
            )
            models[head] = MaskedSoftmax(mu, sd, W, b)
            # the control: the same classifier with no input at all (its biases only)
            _, bias = fit_masked_softmax(
                Z[:, :0], y.astype(np.int64), legal, rows=informative, epochs=epochs, seed=seed + h
            )
            mask_biases[head] = bias
        del Z

        # The test sample, chunk by chunk: predictions of every head.
        correct = dict.fromkeys(models, 0)
        correct_masks_only = dict.fromkeys(models, 0)
        test_y: dict[str, list] = {head: [] for head in models}
        test_legal: dict[str, list] = {head: [] for head in models}
        for start in range(0, len(test_idx), _CHUNK_ROWS):
            chunk = test_idx[start : start + _CHUNK_ROWS]
            X = gather_rows(X_test, chunk)
            ok = np.isfinite(X).all(axis=1)
            for head, model in models.items():
                arrays = _head_arrays(ds, "test", head, C.HEADS[head], chunk)
                if arrays is None:
                    results[head].note = "test labels or masks unusable (see shapes)"
                    continue
                y, legal = arrays
                use = usable_rows(y, legal, ok)
                pred = model.predict(X[use], legal[use])
                correct[head] += int((pred == y[use]).sum())
                pred = np.where(legal[use], mask_biases[head], -np.inf).argmax(axis=1)
                correct_masks_only[head] += int((pred == y[use]).sum())
                test_y[head].append(y[use].astype(np.int64))
                test_legal[head].append(legal[use])
            bar.update(len(chunk))

    for head in models:
        if results[head].note:
            continue
        y = np.concatenate(test_y[head]) if test_y[head] else np.zeros(0, np.int64)
        r = results[head]
        r.test_rows = int(len(y))
        if not len(y):
            r.note = "no labelled test rows"
            continue
        r.accuracy = correct[head] / len(y)
        r.masks_only = correct_masks_only[head] / len(y)
        r.majority, r.uniform_legal = baselines(
            train_labels[head], y, np.concatenate(test_legal[head])
        )
    return _as_dicts(out)


def _as_dicts(out: dict) -> dict:
    return {"settings": out["settings"], "heads": [r.to_dict() for r in out["heads"].values()]}
