"""scikit-learn peer of examples/text_fit.rs: TfidfVectorizer() + LogisticRegression()
(defaults) fitted on the first n training docs of the fortunes split written by
examples/text_fit.rs's data step; prints seconds and test accuracy per size."""
import json
import sys
import time

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/fort"
sizes = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "1000,2000,5000,0").split(",")]
load = lambda n: [json.loads(line) for line in open(f"{d}/{n}.jsonl")]
train, test = load("train"), load("test")
for n in sizes:
    n = n or len(train)
    rows = train[:n]
    t0 = time.perf_counter()
    m = make_pipeline(TfidfVectorizer(), LogisticRegression())
    m.fit([r["text"] for r in rows], [r["label"] for r in rows])
    s = time.perf_counter() - t0
    acc = (m.predict([r["text"] for r in test]) == [r["label"] for r in test]).mean()
    print(f"sklearn n={n} fit_s={s:.2f} accuracy={acc:.4f}", flush=True)
