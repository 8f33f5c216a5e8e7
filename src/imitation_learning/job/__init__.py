"""The preprocessing job: game logs -> the four outputs in memory, or the saved dataset.

Its steps, one module each:

- :mod:`~imitation_learning.job.discovery`: the game logs of a data root, sorted;
- :mod:`~imitation_learning.job.partitions`: the files cut into partitions of about the
  same work (weighted, deterministic);
- :mod:`~imitation_learning.job.bag`: the files as a Dask bag, mapped partition-wise
  through the per-file step, one task a partition;
- :mod:`~imitation_learning.job.steps`: what a partition runs for the in-memory outputs;
- :mod:`~imitation_learning.job.accounting`: rows and files accounted for, duplicate
  games left out;
- :mod:`~imitation_learning.job.executors`: in this process, on threads, or on a Dask
  cluster, chosen in one place;
- :mod:`~imitation_learning.job.plan`: the driver between the phases (split, offsets,
  scaler), a pure function of the partitions' summaries;
- :mod:`~imitation_learning.job.phases`: phase 1 (the bag) and phase 2 (the writes);
- :mod:`~imitation_learning.job.build`: the saved dataset (the command line's job);
- :mod:`~imitation_learning.job.api`: the in-memory outputs (phase 1, brought back to the
  driver) and the bag of per-file results.
"""

import importlib

#: The public names, each with the module it comes from. Imported on first use (PEP 562):
#: a worker that unpickles a task of :mod:`imitation_learning.job.bag` imports that module,
#: not the whole job.
_EXPORTS = {
    "BuildRun": "imitation_learning.job.build",
    "FileOutputs": "imitation_learning.job.api",
    "JobRun": "imitation_learning.job.api",
    "build_dataset": "imitation_learning.job.build",
    "check_accounting": "imitation_learning.job.accounting",
    "discover_csv_files": "imitation_learning.job.discovery",
    "file_results_bag": "imitation_learning.job.api",
    "file_weights": "imitation_learning.job.partitions",
    "files_bag": "imitation_learning.job.bag",
    "partition_sizes": "imitation_learning.job.partitions",
    "process_files_parallel": "imitation_learning.job.api",
    "process_partition": "imitation_learning.per_file.partition",
    "process_single_file": "imitation_learning.job.steps",
    "processed_bag": "imitation_learning.job.bag",
    "reject_duplicate_games": "imitation_learning.job.accounting",
    "run_job": "imitation_learning.job.api",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "BuildRun",
    "FileOutputs",
    "JobRun",
    "build_dataset",
    "check_accounting",
    "discover_csv_files",
    "file_results_bag",
    "file_weights",
    "files_bag",
    "partition_sizes",
    "process_files_parallel",
    "process_partition",
    "process_single_file",
    "processed_bag",
    "reject_duplicate_games",
    "run_job",
]
