"""MLflow's tracking REST protocol: request validation, the JSON mapping, errors, and the endpoint handlers."""
