"""Print a greeting from inside the project's conda environment."""
import argparse
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--greeting", default="hello")
parser.add_argument("--repeat", type=int, default=1)
args = parser.parse_args()
for _ in range(args.repeat):
    print(f"{args.greeting} from {sys.prefix} (CONDA_PREFIX={os.environ.get('CONDA_PREFIX')}, "
          f"EXAMPLE_MODE={os.environ.get('EXAMPLE_MODE')})")
