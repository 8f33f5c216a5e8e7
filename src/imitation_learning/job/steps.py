"""What the workers run for the in-memory outputs: the per-file step over a partition's
files (its joined fast path, :func:`~imitation_learning.per_file.partition.process_partition`),
and the step the job uses (:func:`file_processor`, a test's stand-in when patched)."""

from __future__ import annotations

import functools
from collections.abc import Callable

from imitation_learning.config import Settings
from imitation_learning.job.accounting import attach_report
from imitation_learning.per_file import partition
from imitation_learning.per_file.partition import FileProcessor, process_partition
from imitation_learning.per_file.results import FileResult


def file_processor() -> FileProcessor:
    """The per-file step the job runs (:func:`~imitation_learning.per_file.partition.
    default_step`, looked up at each call: a test may stand one in)."""
    return partition.default_step()


def empty_result(config: dict) -> FileResult:
    """The result of no file at all (the outputs' columns, no row)."""
    return partition.empty_result(config)


def import_file_step() -> None:
    """Import the per-file step and its dependencies (run on each worker at start-up)."""
    file_processor()


def strict_error(rejection) -> Exception:
    """The error that stops a run under ``preprocessing.strict``."""
    from imitation_learning.per_file.file_processing import StrictModeError

    return StrictModeError(rejection)


def process_single_file(file_path: str, config: dict):
    """One game log -> ``(df, strategic_features, labels, masks)`` (``docs/dataset.md``).

    The file's rejection report travels with the frame: ``df.attrs["rejections"]`` (a list
    of ``Rejection.to_dict()``) and ``df.attrs["rows_read"]``.
    """
    result = file_processor()(str(file_path), Settings.of(config).step)
    attach_report(result)
    return result.as_tuple()


def partition_task() -> Callable[..., FileResult]:
    """What a partition runs: :func:`process_partition` holding the features as uint8."""
    return functools.partial(process_partition, pack=True)
