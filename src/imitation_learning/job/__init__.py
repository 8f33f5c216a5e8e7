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

from imitation_learning.job.accounting import check_accounting, reject_duplicate_games
from imitation_learning.job.api import (
    FileOutputs,
    JobRun,
    file_results_bag,
    process_files_parallel,
    run_job,
)
from imitation_learning.job.bag import files_bag, processed_bag
from imitation_learning.job.build import BuildRun, build_dataset
from imitation_learning.job.discovery import discover_csv_files
from imitation_learning.job.partitions import file_weights, partition_sizes
from imitation_learning.job.steps import process_single_file
from imitation_learning.per_file.partition import process_partition

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
