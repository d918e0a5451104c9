"""Loading a large CSV dataset: the old csv-module reader against pandas' C parser in chunks.

    python benchmarks/csv_load.py [--mb 200] [--columns 20] [--repeats 1]

Writes a CSV of about --mb megabytes (--columns feature columns of floats with 6 significant
digits and an integer label column) in a temporary folder, then loads it in a fresh child
process per reader (so each peak is its own) and prints the wall time of the
load and the child's peak RSS (resource.getrusage, ru_maxrss), beside the size
of the float64 data and the RSS of the child before loading (the interpreter,
numpy and nntrain: the base). Only the loading is timed, not a training run.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# The child: import first (the base), then load with one reader and report.
CHILD = """
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
sys.path.insert(0, {bench!r})
import numpy as np
import nntrain.datasets as datasets
from csv_load import old_read_csv
if {reader!r} == "new":
    import pandas  # part of the base: nntrain imports it only when a CSV is read
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
read = old_read_csv if {reader!r} == "old" else datasets.read_csv
X, y, _ = read(Path({path!r}), "label")
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"seconds": seconds, "base_kb": base, "peak_kb": peak, "shape": X.shape,
                  "checksum": float(X.sum() + y.astype(float).sum())}}))
"""


def old_read_csv(path, target):
    """The reader before issue 14 (nntrain 0.2's datasets.read_csv), validation left out."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    rows = [row for row in rows if row]
    header, body = rows[0], rows[1:]
    column = header.index(target)
    features = [i for i in range(len(header)) if i != column]
    X = np.empty((len(body), len(features)))
    for line, row in enumerate(body, start=2):
        for j, i in enumerate(features):
            X[line - 2, j] = float(row[i])
    labels = [row[column].strip() for row in body]
    return X, np.array([float(v) for v in labels]), None


def write_csv(path: Path, megabytes: float, columns: int) -> int:
    """About ``megabytes`` of CSV: floats with 6 significant digits, labels 0-4. Returns the rows."""
    rng = np.random.default_rng(0)
    block = 10_000
    rows = 0
    with open(path, "w") as f:
        f.write(",".join([f"x{i}" for i in range(columns)] + ["label"]) + "\n")
        while f.tell() < megabytes * 1e6:
            table = np.column_stack([rng.normal(size=(block, columns)), rng.integers(0, 5, block)])
            np.savetxt(f, table, fmt=["%.6g"] * columns + ["%d"], delimiter=",")
            rows += block
    return rows


def measure(reader: str, path: Path) -> dict:
    code = CHILD.format(root=str(ROOT), bench=str(Path(__file__).parent), reader=reader,
                        path=str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"the {reader} reader failed:\n{out.stderr}")
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--only", choices=["old", "new"], nargs="*", default=["old", "new"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        start = time.perf_counter()
        rows = write_csv(path, args.mb, args.columns)
        size = path.stat().st_size / 1e6
        data_mb = rows * args.columns * 8 / 1e6
        print(f"{path.name}: {size:.0f} MB, {rows} rows x {args.columns} features + label; "
              f"float64 data {data_mb:.0f} MB (written in {time.perf_counter() - start:.1f} s)")
        results = {}
        for reader in args.only:
            runs = [measure(reader, path) for _ in range(args.repeats)]
            best = min(runs, key=lambda r: r["seconds"])
            results[reader] = best
            base, peak = best["base_kb"] / 1e3, best["peak_kb"] / 1e3
            print(f"{reader}: {best['seconds']:.2f} s, peak RSS {peak:.0f} MB "
                  f"(base {base:.0f} MB, +{peak - base:.0f} MB = "
                  f"{(peak - base) / data_mb:.2f}x the float64 data)")
        if len(results) == 2:
            old, new = results["old"], results["new"]
            assert abs(old["checksum"] - new["checksum"]) < 1e-6 * abs(old["checksum"]) + 1e-6
            print(f"new / old: {old['seconds'] / new['seconds']:.1f}x faster, "
                  f"{(old['peak_kb'] - old['base_kb']) / (new['peak_kb'] - new['base_kb']):.1f}x "
                  "less memory above the base")


if __name__ == "__main__":
    main()
