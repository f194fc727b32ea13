"""Moving runs (with their files) between stores: `proj runs export` / `proj runs import`."""
