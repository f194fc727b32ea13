"""Say hello, and show which commit of the source is running (proj checks out one commit per run)."""
import pathlib
import sys

name, times = sys.argv[1], int(sys.argv[2])
for _ in range(times):
    print(f"hello, {name}")
print("running from", pathlib.Path.cwd())
