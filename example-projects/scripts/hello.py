"""A plain script with no MLproject: `proj run example-projects/scripts -e hello.py -P name=you`."""
import argparse

import proj_client

parser = argparse.ArgumentParser()
parser.add_argument("--name", default="world")
parser.add_argument("--times", type=int, default=1)
args = parser.parse_args()
for i in range(args.times):
    print(f"hello, {args.name}")
    proj_client.log_metric("greetings", i + 1, step=i)
