"""pandas' C parser on each file: `pd.read_csv(path)` (the file read included), best of
`--runs` (default 5). Prints one line per file: `<seconds> <path>`.

    python pandas_read.py [--runs N] FILE.csv ...
"""
import argparse
import time

import pandas as pd

p = argparse.ArgumentParser()
p.add_argument("--runs", type=int, default=5)
p.add_argument("files", nargs="+")
a = p.parse_args()
for f in a.files:
    best = float("inf")
    for _ in range(a.runs):
        t = time.perf_counter()
        pd.read_csv(f, engine="c")
        best = min(best, time.perf_counter() - t)
    print(f"{best:.6f} {f}", flush=True)
