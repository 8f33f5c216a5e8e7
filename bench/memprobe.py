"""Peak memory of the job's driver, in a fresh interpreter (run by :mod:`bench.measure`).

    python -m bench.memprobe DATA_ROOT NUM_WORKERS

Imports everything the job needs, takes the resident size after the imports as the baseline, runs the job in
memory (``run_job``: a local cluster for several workers, this process for one) and prints
one JSON line: the peak RSS increase over the baseline (``ru_maxrss``), the size in bytes of
the four outputs (``df`` deep, features, labels, masks: ``bench.parallel.output_nbytes``) and their ratio.
"""

from __future__ import annotations

import json
import os
import resource
import sys


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _current_rss_bytes() -> int:
    """Resident set size now (``/proc/self/statm``); the peak so far where there is none."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return _peak_rss_bytes()


def probe(data_root: str, num_workers: int) -> dict:
    import distributed  # noqa: F401  (the job's imports, before the baseline)
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.csv  # noqa: F401

    import imitation_learning.file_processing  # noqa: F401
    from bench.measure import job_config
    from bench.parallel import output_nbytes
    from imitation_learning.parallel_processor import discover_csv_files, run_job

    paths = discover_csv_files(data_root)
    config = job_config()
    baseline = _current_rss_bytes()
    run = run_job(paths, config, num_workers, progress=False)
    peak = _peak_rss_bytes()
    outputs = output_nbytes(run.result)
    increase = peak - baseline
    return {
        "workers": run.num_workers,
        "files": len(paths),
        "rows": run.result.rows_read,
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "peak_increase_bytes": increase,
        "outputs_bytes": outputs,
        "peak_increase_over_outputs": increase / outputs if outputs else None,
        "total_s": round(run.timings["total_s"], 3),
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        raise SystemExit("usage: python -m bench.memprobe DATA_ROOT NUM_WORKERS")
    print(json.dumps(probe(argv[0], int(argv[1]))))


if __name__ == "__main__":
    main()
