"""Write the end-to-end evaluation workload: N rows of d Gaussian features N(0, I) with a
fraction of anomalies shifted by 4 in every feature, and a label column.

    python gaussian_csv.py OUT.csv [--rows 200000] [--dim 30] [--anomalies 0.005] [--seed 0]
"""
import argparse

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--rows", type=int, default=200_000)
p.add_argument("--dim", type=int, default=30)
p.add_argument("--anomalies", type=float, default=0.005)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
rng = np.random.default_rng(a.seed)
x = rng.standard_normal((a.rows, a.dim))
label = rng.random(a.rows) < a.anomalies
x[label] += 4.0
header = ",".join([f"f{i}" for i in range(a.dim)] + ["label"])
np.savetxt(
    a.out,
    np.column_stack([x, label.astype(int)]),
    delimiter=",",
    header=header,
    comments="",
    fmt=["%.17g"] * a.dim + ["%d"],
)
