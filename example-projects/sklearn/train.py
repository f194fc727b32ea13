"""Fit an ElasticNet on scikit-learn's bundled diabetes data set (no download) and log how well it does."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import yaml
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

import proj_client  # put on the path by proj: no installation needed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--l1-ratio", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    data = load_diabetes()  # bundled with scikit-learn: works offline
    X, y = data.data, data.target
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=args.seed)
    model = ElasticNet(alpha=args.alpha, l1_ratio=args.l1_ratio, random_state=args.seed).fit(X_train, y_train)
    predicted = model.predict(X_test)

    metrics = {"rmse": float(mean_squared_error(y_test, predicted) ** 0.5),
               "mae": float(mean_absolute_error(y_test, predicted)),
               "r2": float(r2_score(y_test, predicted))}
    for key, value in metrics.items():
        proj_client.log_metric(key, value)
    print(f"ElasticNet(alpha={args.alpha}, l1_ratio={args.l1_ratio}): " +
          ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))

    out = Path(os.environ.get("PROJ_ARTIFACT_DIR", "artifacts"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.yaml").write_text(yaml.safe_dump(metrics))
    coefficients = dict(zip(data.feature_names, (float(c) for c in model.coef_)))
    (out / "coefficients.json").write_text(json.dumps(coefficients, indent=2))


if __name__ == "__main__":
    main()
