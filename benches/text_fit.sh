#!/bin/sh
# Text training, loupe vs scikit-learn, on the fortunes split of scale.py:
# writes DIR/{train,test}.jsonl once, then times learner::train
# (examples/text_fit.rs) and TfidfVectorizer() + LogisticRegression()
# (benches/text_fit_sklearn.py) on the first 1k, 2k, 5k and all training docs.
# Usage: benches/text_fit.sh [DIR] (default /tmp/fortunes-fit). Needs
# apt-get download, dpkg-deb, Python with scikit-learn 1.6.1.
set -e
cd "$(dirname "$0")/.."
DIR=${1:-/tmp/fortunes-fit}
mkdir -p "$DIR"
if [ ! -f "$DIR/test.jsonl" ]; then
  python3 - "$DIR" <<'PY'
import json, sys
sys.path.insert(0, "benches")
import scale
d = sys.argv[1]
classes, train, test = scale.fortunes(d)
for name, rows in (("train", train), ("test", test)):
    with open(f"{d}/{name}.jsonl", "w") as f:
        for t, c in rows:
            f.write(json.dumps({"text": t, "label": classes.index(c)}) + "\n")
PY
fi
cargo build --release --locked --example text_fit
target/release/examples/text_fit "$DIR"
python3 benches/text_fit_sklearn.py "$DIR"
