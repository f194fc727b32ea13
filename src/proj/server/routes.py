"""The route table: every MLflow endpoint proj serves, path and methods to handler (under both API prefixes)."""
from __future__ import annotations

from proj.server.protocol import experiments, logged_models, metrics, runs
from proj.server.protocol.call import Handler

API_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")  # the REST API and the UI's prefix for the same calls

ENDPOINTS: list[tuple[str, tuple[str, ...], Handler]] = [
    ("/experiments/create", ("POST",), experiments.create),
    ("/experiments/get", ("GET",), experiments.get),
    ("/experiments/get-by-name", ("GET",), experiments.get_by_name),
    ("/experiments/search", ("GET", "POST"), experiments.search),
    ("/experiments/update", ("POST",), experiments.update),
    ("/experiments/delete", ("POST",), experiments.delete),
    ("/experiments/restore", ("POST",), experiments.restore),
    ("/experiments/set-experiment-tag", ("POST",), experiments.set_tag),
    ("/experiments/delete-experiment-tag", ("POST",), experiments.delete_tag),
    ("/runs/create", ("POST",), runs.create),
    ("/runs/get", ("GET",), runs.get),
    ("/runs/update", ("POST",), runs.update),
    ("/runs/delete", ("POST",), runs.delete),
    ("/runs/restore", ("POST",), runs.restore),
    ("/runs/set-tag", ("POST",), runs.set_tag),
    ("/runs/delete-tag", ("POST",), runs.delete_tag),
    ("/runs/log-metric", ("POST",), runs.log_metric),
    ("/runs/log-parameter", ("POST",), runs.log_param),
    ("/runs/log-batch", ("POST",), runs.log_batch),
    ("/runs/log-inputs", ("POST",), runs.log_inputs),
    ("/runs/outputs", ("POST",), runs.log_outputs),
    ("/runs/search", ("GET", "POST"), runs.search),
    ("/runs/log-model", ("POST",), runs.log_model),
    ("/metrics/get-history", ("GET",), metrics.get_history),
    ("/metrics/get-history-bulk-interval", ("GET",), metrics.get_history_bulk_interval),
    ("/logged-models", ("POST",), logged_models.create),
    ("/logged-models/search", ("POST",), logged_models.search),
    ("/logged-models/{model_id}", ("GET",), logged_models.get),
    ("/logged-models/{model_id}", ("PATCH",), logged_models.finalize),
    ("/logged-models/{model_id}", ("DELETE",), logged_models.delete),
    ("/logged-models/{model_id}/tags", ("PATCH",), logged_models.set_tags),
    ("/logged-models/{model_id}/tags/{tag_key:path}", ("DELETE",), logged_models.delete_tag),
    ("/logged-models/{model_id}/params", ("POST",), logged_models.log_params),
]
