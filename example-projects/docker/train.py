"""Fit y = w*x by gradient descent on a tiny built-in data set; log metrics and save the model."""
import argparse
import os

import proj_client  # put on PYTHONPATH by proj (mounted read-only into the container)

DATA = [(0.0, 0.1), (1.0, 2.1), (2.0, 3.9), (3.0, 6.2), (4.0, 7.8)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    proj_client.log_params({"mode": os.environ.get("TRAINING_MODE", "unset")})
    w = 0.0
    for epoch in range(args.epochs):
        grad = sum(2 * (w * x - y) * x for x, y in DATA) / len(DATA)
        w -= args.alpha * 0.1 * grad
        loss = sum((w * x - y) ** 2 for x, y in DATA) / len(DATA)
        proj_client.log_metric("loss", loss, step=epoch)
        print(f"epoch {epoch}: w={w:.4f} loss={loss:.4f}")
    proj_client.log_metric("w", w)
    # An MLmodel directory in the run's artifacts/model (PROJ_MODEL_DIR), which is mounted into the
    # container at the same absolute path as on the host.
    model_dir = proj_client.save_model({"w": w, "alpha": args.alpha, "epochs": args.epochs}, flavor="pickle")
    print(f"model written to {model_dir}")


if __name__ == "__main__":
    main()
