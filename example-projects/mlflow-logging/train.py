"""ElasticNet on scikit-learn's bundled diabetes data, logged with mlflow as MLflow's examples do.

Nothing here knows about proj: mlflow logs to the tracking location proj hands the run
(MLFLOW_TRACKING_URI), and proj ingests it into its own run record afterwards.
"""
import sys

import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import train_test_split

alpha = float(sys.argv[1]) if len(sys.argv) > 1 else 0.05
l1_ratio = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1

X, y = load_diabetes(return_X_y=True)
train_x, test_x, train_y, test_y = train_test_split(X, y, random_state=40)

with mlflow.start_run():
    lr = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, random_state=42)
    for step, max_iter in enumerate((5, 50, 1000)):  # a learning curve: one metric point per step
        lr.set_params(max_iter=max_iter).fit(train_x, train_y)
        mlflow.log_metric("train_r2", r2_score(train_y, lr.predict(train_x)), step=step)
    predicted = lr.predict(test_x)
    rmse = np.sqrt(mean_squared_error(test_y, predicted))
    mae = mean_absolute_error(test_y, predicted)
    r2 = r2_score(test_y, predicted)
    print(f"Elasticnet model (alpha={alpha}, l1_ratio={l1_ratio}): rmse={rmse:.2f} mae={mae:.2f} r2={r2:.3f}")

    mlflow.log_param("alpha", alpha)
    mlflow.log_param("l1_ratio", l1_ratio)
    mlflow.log_metric("rmse", rmse)
    mlflow.log_metric("r2", r2)
    mlflow.log_metric("mae", mae)
    mlflow.set_tag("model_family", "elasticnet")
    # cloudpickle loads on every MLflow version; MLflow >= 3.x would otherwise pick skops (an extra package).
    mlflow.sklearn.log_model(lr, "model", serialization_format="cloudpickle")
