#!/usr/bin/env bash
# Builds a side virtualenv with MLflow for the side-by-side benchmarks (needs the package index).
# Usage: bash benchmarks/setup_mlflow.sh [DIR]   (default: benchmarks/.mlflow-venv)
set -euo pipefail
dir="${1:-$(dirname "$0")/.mlflow-venv}"
if [ -x "$dir/bin/mlflow" ]; then echo "mlflow already in $dir"; exit 0; fi
uv="$(python -c 'import uv; print(uv.find_uv_bin())')"
"$uv" venv --quiet --python "$(command -v python3)" "$dir"
VIRTUAL_ENV="$dir" "$uv" pip install --quiet mlflow virtualenv
echo "mlflow installed in $dir: $("$dir/bin/mlflow" --version)"
