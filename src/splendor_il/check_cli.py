"""``splendor-il check [DATASET_DIR]``: is a saved dataset sound and learnable?

Runs the soundness checks (:mod:`imitation_learning.check.soundness`, one pass/fail
line each) and the learnability check (:mod:`imitation_learning.check.learnability`, per
head: a masked softmax regression against baselines) on a saved dataset, X memory-mapped, and prints the
report as text or, with ``--json``, as one JSON document. ``DATASET_DIR`` defaults to the
configured output (``data.processed_dir`` of ``--config FILE``, else ``./config.yaml`` if
present, else the defaults).

Exit codes: 0 every soundness check passed (a skipped check does not fail), 1 a soundness
check failed, 2 usage error (no dataset in the folder, bad flag or configuration). The
learnability figures never change the exit code: they are evidence to read, not a gate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

EXIT_OK = 0
EXIT_UNSOUND = 1
EXIT_USAGE = 2

DEFAULT_CONFIG_FILE = "config.yaml"


def register_cli(subparsers) -> argparse.ArgumentParser:
    """Add the ``check`` subcommand to ``splendor-il``."""
    from imitation_learning.check.learnability import DEFAULT_EPOCHS, DEFAULT_MAX_ROWS, DEFAULT_SEED

    p = subparsers.add_parser(
        "check",
        help="prove a saved dataset sound and learnable before training on it",
        description=(
            "Check a saved dataset: X finite, shapes, preprocessing_stats.json, labels valid and "
            "inside their masks, X in "
            "step with the masks, no game in two splits, the scaler, one-hot groups (pass/fail "
            "each; exit code 1 if any fails), then per head a masked softmax regression trained "
            "on a sample of train and scored on test against baselines."
        ),
    )
    p.add_argument(
        "dataset_dir",
        nargs="?",
        metavar="DATASET_DIR",
        help="the dataset folder (default: data.processed_dir of the configuration)",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help=f"YAML configuration (default: ./{DEFAULT_CONFIG_FILE} if present, else defaults)",
    )
    p.add_argument(
        "--max-rows",
        type=int,
        default=DEFAULT_MAX_ROWS,
        metavar="N",
        help=f"train rows sampled, and test rows scored, by the learnability check "
        f"(default {DEFAULT_MAX_ROWS:,})",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        metavar="N",
        help=f"training epochs of the learnability check (default {DEFAULT_EPOCHS})",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"seed of the samples and the training (default {DEFAULT_SEED})",
    )
    p.add_argument("--skip-learnability", action="store_true", help="run the soundness checks only")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_check_command)
    return p


def _dataset_dir(args: argparse.Namespace) -> str:
    if args.dataset_dir:
        return args.dataset_dir
    from imitation_learning.config import Settings, load_config

    path = args.config
    if path is None and Path(DEFAULT_CONFIG_FILE).is_file():
        path = DEFAULT_CONFIG_FILE
    return Settings.of(load_config(path)).data.processed_dir


def run_check(
    path: str,
    *,
    max_rows: int | None = None,
    epochs: int | None = None,
    seed: int | None = None,
    learnability: bool = True,
    progress: bool = False,
) -> dict:
    """The whole report as a dict (what ``--json`` prints); ``exit_code`` included.
    Raises :class:`imitation_learning.check.DatasetNotFoundError`."""
    from imitation_learning.check import learnability as learn
    from imitation_learning.check.report import FAIL, passed, report_dict
    from imitation_learning.check.shapes import DatasetNotFoundError, open_dataset
    from imitation_learning.check.soundness import check_soundness
    from imitation_learning.dataset.splits import SPLITS

    t0 = time.perf_counter()
    try:
        ds = open_dataset(path)
    except DatasetNotFoundError:
        raise
    except Exception:  # noqa: BLE001 - a dataset that does not load fails the files check
        ds = None
    results = check_soundness(path, dataset=ds, progress=progress)
    t1 = time.perf_counter()
    report: dict = {
        "dataset": str(path),
        "rows": {s: int(ds[f"X_{s}"].shape[0]) for s in SPLITS} if ds is not None else None,
        "columns": len(ds["feature_names"]) if ds is not None else None,
        "soundness": report_dict(results),
        "sound": passed(results),
        "learnability": None,
    }
    if learnability and ds is not None and results[0].status != FAIL:
        report["learnability"] = learn.check_learnability(
            ds,
            max_rows=max_rows if max_rows is not None else learn.DEFAULT_MAX_ROWS,
            epochs=epochs if epochs is not None else learn.DEFAULT_EPOCHS,
            seed=seed if seed is not None else learn.DEFAULT_SEED,
            progress=progress,
        )
    t2 = time.perf_counter()
    report["timings"] = {"soundness_s": round(t1 - t0, 3), "learnability_s": round(t2 - t1, 3)}
    report["exit_code"] = EXIT_OK if report["sound"] else EXIT_UNSOUND
    return report


def _fmt(value: float | None, sign: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.3f}" if sign else f"{value:.3f}"


def format_report(report: dict) -> str:
    """The report as text: one line per soundness check (examples under a failed one), then
    one line per head."""
    lines = [f"Dataset {report['dataset']}"]
    if report["rows"] is not None:
        rows = ", ".join(f"{s} {n:,}" for s, n in report["rows"].items())
        lines[0] += f" ({rows} rows; {report['columns']:,} columns)"
    lines.append("Soundness")
    width = max(len(c["name"]) for c in report["soundness"])
    for c in report["soundness"]:
        lines.append(
            f"  {c['status'].upper():4}  {c['name']:<{width}}  {c['description']}: {c['summary']}"
        )
        if c["status"] == "fail":
            lines.extend(f"        - {e}" for e in c["examples"])
            for split, figures in c["per_split"].items():
                lines.append(f"        {split}: {json.dumps(figures, separators=(', ', ': '))}")
    learn = report["learnability"]
    if learn is not None:
        s = learn["settings"]
        lines.append(
            f"Learnability: masked softmax regression, {s['train_rows_sampled']:,} of "
            f"{s['train_rows_total']:,} train rows, scored on {s['test_rows_sampled']:,} of "
            f"{s['test_rows_total']:,} test rows (seed {s['seed']}, {s['epochs']} epochs)"
        )
        lines.append(
            f"  {'head':<17}{'train':>7}{'test':>7}{'model':>8}{'majority':>10}"
            f"{'uniform':>9}{'masks only':>12}{'margin':>8}"
        )
        for h in learn["heads"]:
            line = (
                f"  {h['head']:<17}{h['train_rows']:>7}{h['test_rows']:>7}"
                f"{_fmt(h['accuracy']):>8}{_fmt(h['majority']):>10}"
                f"{_fmt(h['uniform_legal']):>9}{_fmt(h['masks_only']):>12}"
                f"{_fmt(h['margin'], sign=True):>8}"
            )
            if h["note"]:
                line += f"  ({h['note']})"
            lines.append(line)
        lines.append(
            "  top-1 test accuracy. majority: the most frequent train class; uniform: a uniform "
            "choice among the legal classes; masks only: the same classifier without X; "
            "margin: model - best baseline."
        )
    counts = {k: sum(c["status"] == k for c in report["soundness"]) for k in ("pass", "fail")}
    skipped = len(report["soundness"]) - counts["pass"] - counts["fail"]
    verdict = "sound" if report["sound"] else "NOT sound"
    lines.append(
        f"{verdict}: {counts['pass']} checks passed, {counts['fail']} failed, {skipped} skipped "
        f"({report['timings']['soundness_s']:.1f} s + learnability "
        f"{report['timings']['learnability_s']:.1f} s)"
    )
    return "\n".join(lines)


def run_check_command(args: argparse.Namespace) -> int:
    from imitation_learning.check.shapes import DatasetNotFoundError
    from imitation_learning.config import ConfigError

    if args.max_rows < 1:
        print(
            f"splendor-il check: --max-rows must be at least 1, not {args.max_rows}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.epochs < 1:
        print(f"splendor-il check: --epochs must be at least 1, not {args.epochs}", file=sys.stderr)
        return EXIT_USAGE
    try:
        path = _dataset_dir(args)
        report = run_check(
            path,
            max_rows=args.max_rows,
            epochs=args.epochs,
            seed=args.seed,
            learnability=not args.skip_learnability,
            progress=not args.no_progress,
        )
    except ConfigError as exc:  # one line per problem
        for problem in exc.problems:
            print(f"splendor-il check: configuration: {problem}", file=sys.stderr)
        return EXIT_USAGE
    except DatasetNotFoundError as exc:
        print(f"splendor-il check: no dataset: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("splendor-il check: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        print(format_report(report))
    return report["exit_code"]
