"""The end-to-end baseline of `rcfops eval FILE --label label --test-fraction 0`: pandas
`read_csv`, scikit-learn's IsolationForest (100 trees, 256 samples, one job) fitted on every
row, then `score_samples` of every row, and the ROC-AUC.

    python iforest_eval.py FILE.csv
"""
import sys
import time

import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

t0 = time.perf_counter()
df = pd.read_csv(sys.argv[1])
y = df.pop("label").to_numpy()
x = df.to_numpy()
t1 = time.perf_counter()
model = IsolationForest(n_estimators=100, max_samples=256, n_jobs=1, random_state=0).fit(x)
t2 = time.perf_counter()
scores = -model.score_samples(x)
t3 = time.perf_counter()
print(
    f"load {t1 - t0:.3f} s, fit {t2 - t1:.3f} s, score {t3 - t2:.3f} s, "
    f"ROC-AUC {roc_auc_score(y, scores):.4f}"
)
