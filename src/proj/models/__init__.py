"""Model directories (MLmodel) of runs: validation, env files from the lock, the run hook and the store record."""
