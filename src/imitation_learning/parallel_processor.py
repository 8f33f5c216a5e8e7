"""The job's in-memory API under its first name (kept for existing imports): see
:mod:`imitation_learning.job`.

>>> from imitation_learning.parallel_processor import (
...     discover_csv_files, process_files_parallel, process_single_file)
"""

from imitation_learning.job.accounting import (
    check_accounting,
    check_file_accounting,
    duplicate_files,
    merge_rejections,
    reject_duplicate_games,
)
from imitation_learning.job.api import (
    JobRun,
    collect_partitions,
    file_results_bag,
    process_files_parallel,
    run_job,
)
from imitation_learning.job.discovery import GAME_FOLDERS, discover_csv_files
from imitation_learning.job.executors import resolve_num_workers, resolve_scheduler_address
from imitation_learning.job.partitions import (
    FILE_OVERHEAD_BYTES,
    MIN_PARTITIONS_PER_WORKER,
    TARGET_FILES_PER_PARTITION,
    file_weights,
    partition_sizes,
)
from imitation_learning.job.steps import process_single_file
from imitation_learning.per_file.partition import FILE_INDEX_ATTR, process_partition
from imitation_learning.per_file.results import FileResult
from splendor.errors import Rejection

__all__ = [
    "FILE_INDEX_ATTR",
    "FILE_OVERHEAD_BYTES",
    "GAME_FOLDERS",
    "MIN_PARTITIONS_PER_WORKER",
    "TARGET_FILES_PER_PARTITION",
    "FileResult",
    "JobRun",
    "Rejection",
    "check_accounting",
    "check_file_accounting",
    "collect_partitions",
    "discover_csv_files",
    "duplicate_files",
    "file_results_bag",
    "file_weights",
    "merge_rejections",
    "partition_sizes",
    "process_files_parallel",
    "process_partition",
    "process_single_file",
    "reject_duplicate_games",
    "resolve_num_workers",
    "resolve_scheduler_address",
    "run_job",
]
