"""Step 2 of the job: the files cut into partitions of about the same work, in order
(deterministic: the same files and workers give the same partitions)."""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Sequence

import numpy as np

#: Automatic partitioning: about this many files per partition (a file's step costs far more
#: than a task's overhead) ...
TARGET_FILES_PER_PARTITION = 100


#: ... but at least this many partitions per worker, so that the results stream back while
#: the workers run and no worker waits long for the last one; more cost a scheduler round
#: trip and a fetch each (measured in ``docs/benchmarks.md``, "Settings in the code").
MIN_PARTITIONS_PER_WORKER = 2


#: The fixed cost of a file, as the bytes of log that take as long to process (a fit of the
#: per-file step's time against file size, ``docs/benchmarks.md``); split by bytes alone, a
#: partition of small logs ran longer than one of large logs.
FILE_OVERHEAD_BYTES = 48_000


def partition_sizes(
    n_files: int,
    n_workers: int,
    files_per_partition: int | None = None,
    weights: Sequence[float] | None = None,
) -> list[int]:
    """How many files each partition gets, in order; never an empty partition.

    ``files_per_partition`` given: that many files each, the last partition takes the rest.
    Automatic: about :data:`TARGET_FILES_PER_PARTITION` files per partition, but at least
    :data:`MIN_PARTITIONS_PER_WORKER` partitions per worker. With ``weights`` (one per
    file, e.g. its size in bytes), the cuts make the partitions' total weights about
    equal instead of their file counts: a 4-player game log is twice the work of a
    2-player one, and sorted paths put all the long games at the end, where a partition
    twice as long as the others would leave one worker idle.
    """
    if n_files <= 0:
        return []
    if files_per_partition is not None:
        full, rest = divmod(n_files, files_per_partition)
        return [files_per_partition] * full + ([rest] if rest else [])
    npartitions = min(
        n_files,
        max(
            math.ceil(n_files / TARGET_FILES_PER_PARTITION),
            MIN_PARTITIONS_PER_WORKER * max(n_workers, 1),
        ),
    )
    if weights is None:
        cum = np.arange(1, n_files + 1, dtype=np.float64)
    else:
        if len(weights) != n_files:
            raise ValueError(f"{len(weights)} weights for {n_files} files")
        cum = np.cumsum(np.maximum(np.asarray(weights, dtype=np.float64), 1.0))
    # Cut k after the first file whose running weight reaches k / npartitions of the total,
    # leaving room for at least one file per partition on either side; cuts that coincide
    # (one very heavy file) merge their partitions.
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, npartitions) / npartitions) + 1
    cuts = np.clip(cuts, np.arange(1, npartitions), n_files - np.arange(npartitions - 1, 0, -1))
    bounds = [0, *np.maximum.accumulate(cuts).tolist(), n_files]
    return [b - a for a, b in itertools.pairwise(bounds) if b > a]


def file_weights(paths: Sequence[str]) -> list[float] | None:
    """The expected work of each file, for :func:`partition_sizes`: its size in bytes plus
    :data:`FILE_OVERHEAD_BYTES`. ``None`` when a path is a URL (asking a remote store for
    every size would cost more than it saves) or a file cannot be looked at (the per-file
    step reports it; the split then goes by count)."""
    if any("://" in p for p in paths):
        return None
    try:
        return [float(os.path.getsize(p) + FILE_OVERHEAD_BYTES) for p in paths]
    except OSError:
        return None


def chunks_of(paths: Sequence[str], sizes: Sequence[int]) -> list[list[str]]:
    """The paths cut into consecutive blocks of ``sizes`` files (in order)."""
    bounds = np.cumsum([0, *sizes]).tolist()
    if bounds[-1] != len(paths):
        raise ValueError(f"partition sizes cover {bounds[-1]} files, given {len(paths)}")
    return [list(paths[a:b]) for a, b in itertools.pairwise(bounds)]
