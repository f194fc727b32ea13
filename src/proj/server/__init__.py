"""``proj server``: MLflow's tracking protocol over the run store (an ASGI app; loaded only for this command)."""
