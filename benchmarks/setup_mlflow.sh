#!/usr/bin/env bash
# Builds a side virtualenv with MLflow for the side-by-side benchmarks (needs the package index).
# Usage: bash benchmarks/setup_mlflow.sh [DIR]   (default: benchmarks/.mlflow-venv)
set -euo pipefail
dir="${1:-$(dirname "$0")/.mlflow-venv}"
uv="$(python -c 'import uv; print(uv.find_uv_bin())')"
if [ -x "$dir/bin/mlflow" ]; then
  # An older venv may lack the PostgreSQL driver bench_teams.py's mlflow server needs.
  "$dir/bin/python" -c 'import psycopg2' 2>/dev/null || VIRTUAL_ENV="$dir" "$uv" pip install --quiet psycopg2-binary
  echo "mlflow already in $dir"; exit 0
fi
"$uv" venv --quiet --python "$(command -v python3)" "$dir"
# psycopg2: mlflow server on PostgreSQL (benchmarks/bench_teams.py)
VIRTUAL_ENV="$dir" "$uv" pip install --quiet mlflow virtualenv psycopg2-binary
# Bytecode now: these VMs export PYTHONDONTWRITEBYTECODE=1, and uvicorn's workers start with -B, so each of
# mlflow server's workers would otherwise compile MLflow on every start (minutes on a busy 2-core VM).
"$dir/bin/python" -m compileall -q -j 0 "$dir/lib" >/dev/null || true
echo "mlflow installed in $dir: $("$dir/bin/mlflow" --version)"
