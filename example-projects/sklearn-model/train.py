"""Fit a ridge regression on scikit-learn's bundled diabetes data and save it as the run's model.

proj_client.save_model writes MLmodel (sklearn + python_function flavors), model.pkl and env files
into the run's model directory; proj then pins the env files to the run's exact lock. Load it with
``mlflow.sklearn.load_model(dir)`` or ``mlflow.pyfunc.load_model(dir)``.
"""
import argparse

import proj_client  # put on the path by proj: nothing to install
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, default=0.5)
parser.add_argument("--test-size", type=float, default=0.25)
args = parser.parse_args()

X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=args.test_size, random_state=42)
model = Ridge(alpha=args.alpha).fit(X_train, y_train)
predicted = model.predict(X_test)
rmse = mean_squared_error(y_test, predicted) ** 0.5
r2 = r2_score(y_test, predicted)
proj_client.log_metrics({"rmse": rmse, "r2": r2})
path = proj_client.save_model(model, flavor="sklearn", metadata={"dataset": "sklearn diabetes"})
print(f"Ridge(alpha={args.alpha}): rmse={rmse:.2f} r2={r2:.3f}; model saved to {path}")
