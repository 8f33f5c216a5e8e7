"""One run of the job in a fresh interpreter, as the command line runs it: the driver's peak
memory and the job's timings (run by :mod:`bench.measure`).

    python -m bench.memprobe DATA_ROOT NUM_WORKERS

Imports everything the job needs and takes the resident size after the imports as the
baseline; runs the job in memory (``run_job``: a local cluster for several workers, this
process for one); prints one JSON line: the peak resident size, its increase over the
baseline, the size in bytes of the four outputs (``df`` deep, features, labels, masks:
:func:`output_nbytes`) and the ratio of the two, and the job's own timings. A
fresh process has none of the memory a previous run freed: the run pays for fresh pages,
as a run of the command line does (and a new cluster's workers always do).

The peak is the kernel's high-water mark of this process's memory (``VmHWM`` in
``/proc/self/status``), reset at the baseline (``/proc/self/clear_refs``). Not
``ru_maxrss``: on Linux that survives ``exec``, so a child forked from a big parent (the
benchmark runner holds hundreds of MiB) starts with the parent's peak.
"""

from __future__ import annotations

import json
import resource
import sys


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Reset this process's ``VmHWM`` to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def current_rss_bytes() -> int:
    kib = _status_kib("VmRSS")
    return kib * 1024 if kib is not None else peak_rss_bytes()


def peak_rss_bytes() -> int:
    """``VmHWM``, else ``ru_maxrss`` (KiB on Linux)."""
    kib = _status_kib("VmHWM")
    if kib is None:
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * 1024


def probe(data_root: str, num_workers: int) -> dict:
    import distributed  # noqa: F401  (the job's imports, before the baseline)
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.csv  # noqa: F401

    import imitation_learning.per_file.file_processing  # noqa: F401
    from bench.measure import job_config
    from imitation_learning.parallel_processor import discover_csv_files, run_job

    paths = discover_csv_files(data_root)
    config = job_config()
    reset = reset_peak()
    baseline = current_rss_bytes()
    run = run_job(paths, config, num_workers, progress=False)
    peak = peak_rss_bytes()
    outputs = output_nbytes(run.result)
    increase = peak - baseline
    return {
        "workers": run.num_workers,
        "files": len(paths),
        "rows": run.result.rows_read,
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "peak_reset_at_baseline": reset,
        "peak_increase_bytes": increase,
        "outputs_bytes": outputs,
        "peak_increase_over_outputs": increase / outputs if outputs else None,
        **{k: round(v, 3) for k, v in run.timings.items()},
    }


def output_nbytes(result) -> int:
    """Size of the four outputs of a ``FileResult``: the frame (deep) plus the arrays."""
    return (
        int(result.df.memory_usage(deep=True, index=True).sum())
        + result.features.nbytes
        + sum(a.nbytes for a in result.labels.values())
        + sum(a.nbytes for a in result.masks.values())
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        raise SystemExit("usage: python -m bench.memprobe DATA_ROOT NUM_WORKERS")
    print(json.dumps(probe(argv[0], int(argv[1]))))


if __name__ == "__main__":
    main()
