"""The server's authentication and authorization: MLflow's basic-auth protocol over proj.auth's store."""
