"""One run of the job in a fresh interpreter, as ``splendor-il preprocess`` runs it (run by
``bench/parallel.py``).

    python -m bench.fresh_run DATA_ROOT NUM_WORKERS

Imports what the job needs, then runs ``run_job`` once (a local cluster for several
workers, this process for one) and prints one JSON line with the job's own timings. A fresh
process has none of the memory a previous run freed: every run pays for fresh pages (and a
new cluster's workers always do), as a real run of the command line does.
"""

from __future__ import annotations

import json
import sys


def main(data_root: str, num_workers: int) -> dict:
    import distributed  # noqa: F401  (imports: not part of the run)

    import imitation_learning.file_processing  # noqa: F401
    from imitation_learning import parallel_processor as pp
    from imitation_learning.config import validate_config

    paths = pp.discover_csv_files(data_root)
    config = validate_config({"preprocessing": {"dashboard_address": "127.0.0.1:0"}})
    run = pp.run_job(paths, config, num_workers=num_workers, progress=False)
    return {"rows": len(run.result), **run.timings}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
