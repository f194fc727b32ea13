"""Say hello, and show which commit of the source is running (proj runs one exact commit per run)."""
import os
import pathlib
import sys

name, times = sys.argv[1], int(sys.argv[2])
for _ in range(times):
    print(f"hello, {name}")
print("running commit", os.environ.get("PROJ_SOURCE_COMMIT", "(not a git source)"), "in", pathlib.Path.cwd())
