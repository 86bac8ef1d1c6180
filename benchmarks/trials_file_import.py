"""Time ``TrialStore.import_files`` on one file (e.g. a website CSV export): median of N runs.

Each run imports FILE into a fresh store (no ``--as-of``: a website export's as-of date is its
latest date posted, found while its rows are read). Point ``PYTHONPATH`` at another checkout's
``src`` to time that one; the load average is printed beside the figure (shared machine).

    NEUROMODMAP_DATA=../shared/data python benchmarks/trials_file_import.py \\
        ../shared/data/trials/ctgov_csv_mixed_1000_anand21jv/ctg-studies.csv.gz --repeats 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from neuromodmap.trials.store import TrialStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    seconds = []
    load = os.getloadavg()[0]
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp, TrialStore(Path(tmp) / "t.duckdb") as store:
            start = time.perf_counter()
            report = store.import_files([args.file], progress=False)
            seconds.append(time.perf_counter() - start)
    import neuromodmap

    print(f"{args.file.name}: {report.n_read:,} records, import median {statistics.median(seconds):.3f} s of "
          f"{args.repeats} (best {min(seconds):.3f} s) = {report.n_read / statistics.median(seconds):,.0f} records/s; "
          f"code {Path(neuromodmap.__file__).parent}; load average {load:.2f} -> {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
