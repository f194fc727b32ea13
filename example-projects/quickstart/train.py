"""Fit y = w*x + b by gradient descent on a small CSV and report loss per epoch to proj."""
import argparse
import csv
import json
import os

import proj_client  # put on the path by proj: nothing to install

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, required=True)
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--normalize", default="true")
parser.add_argument("--data", required=True)
parser.add_argument("--out-uri", default="")
parser.add_argument("--label", default="")
args = parser.parse_args()

with open(args.data, newline="") as fh:
    rows = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(fh)]
if args.normalize.lower() in ("true", "1", "yes"):
    top = max(abs(x) for x, _ in rows) or 1.0
    rows = [(x / top, y) for x, y in rows]

w = b = 0.0
for epoch in range(args.epochs):
    grad_w = sum(2 * (w * x + b - y) * x for x, y in rows) / len(rows)
    grad_b = sum(2 * (w * x + b - y) for x, y in rows) / len(rows)
    w, b = w - args.alpha * grad_w, b - args.alpha * grad_b
    loss = sum((w * x + b - y) ** 2 for x, y in rows) / len(rows)
    proj_client.log_metric("loss", loss, step=epoch)
    print(f"epoch {epoch}: loss={loss:.4f}")

proj_client.log_metric("w", w)
proj_client.log_metric("b", b)
proj_client.set_tag("label", args.label)
model_dir = os.environ.get("PROJ_ARTIFACT_DIR", ".")
with open(os.path.join(model_dir, "weights.json"), "w") as fh:
    json.dump({"w": w, "b": b}, fh)
print(f"done: w={w:.3f} b={b:.3f} ({args.label})")
