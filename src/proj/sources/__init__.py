"""Where a project's code comes from: a local directory or a git URL, with its provenance."""
