"""Load time of one ratings object through the DuckDB raw loader, and whether it reconciles.

    python benchmarks/raw_load_reader_check.py             # 3 rounds, medians
    python benchmarks/raw_load_reader_check.py --repeat 5

Three objects, each loaded into a fresh warehouse file by ``DuckDBRawLoader`` (inspection,
the reader, rejects, ledger; no Dagster):

- the shipped ml-latest-small ``ratings.csv`` (100,836 ratings, clean);
- a generated file of 1,000,000 ratings, clean;
- the same shape with every 10th line unreadable (``x<n>`` as movieId): the file on which
  DuckDB 2.0.1's parallel ``read_csv(store_rejects=true)`` stops reading early
  (docs/failure-modes.md), so the loader has to notice and read it again.

Prints, per object, the median load time and ``records = loaded + rejected`` (``ok`` or the
figures that disagree). Figures, not tests: the machine is shared and drifts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import duckdb  # noqa: E402

from netflix_elt.loading.duckdb_loader import DuckDBRawLoader, ensure_raw_schema  # noqa: E402
from netflix_elt.movielens import DATASETS, dataset  # noqa: E402
from netflix_elt.resources.object_store import FolderObjectStore  # noqa: E402

RATINGS = dataset("ratings")


def generate(path: Path, lines: int, bad_every: int = 0) -> Path:
    """``lines`` ratings; with ``bad_every``, line i (0-based) with i % bad_every == 1 has a
    movieId that does not cast (the reproduction's file, byte for byte)."""
    with open(path, "w") as f:
        f.write("userId,movieId,rating,timestamp\n")
        for i in range(lines):
            f.write(f"{i},x{i},3.0,974000000\n" if bad_every and i % bad_every == 1 else f"{i},{i % 1000},3.5,974000000\n")
    return path


def load_once(src: Path, work: Path) -> tuple[float, object]:
    store = FolderObjectStore(root=str(work / "store"))
    obj = store.put_file(src, "raw/ratings/ratings.csv")
    con = duckdb.connect(str(work / "warehouse.duckdb"))
    try:
        ensure_raw_schema(con, DATASETS)
        started = time.perf_counter()
        outcome = DuckDBRawLoader(con, store).load(RATINGS, obj)
        return time.perf_counter() - started, outcome
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = {
            "ml-latest-small ratings.csv": REPO / "data" / "ml-latest-small" / "ratings.csv",
            "1,000,000 lines, clean": generate(tmp / "clean.csv", 1_000_000),
            "1,000,000 lines, every 10th bad": generate(tmp / "bad.csv", 1_000_000, bad_every=10),
        }
        print(f"duckdb {duckdb.__version__}, {args.repeat} rounds, median load time")
        for k, (label, src) in enumerate(files.items()):
            times, outcome = [], None
            for n in range(args.repeat):
                work = tmp / f"work-{k}-{n}"
                work.mkdir()
                seconds, outcome = load_once(src, work)
                times.append(seconds)
            balanced = outcome.rows_in_file == outcome.rows_loaded + outcome.rows_rejected
            check = "ok" if balanced else "DISAGREE"
            print(f"{label:34} {statistics.median(times):6.2f} s  (min {min(times):.2f}, max {max(times):.2f})  "
                  f"records {outcome.rows_in_file:,} = loaded {outcome.rows_loaded:,} + rejected {outcome.rows_rejected:,}: {check}")


if __name__ == "__main__":
    main()
