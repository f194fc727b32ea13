"""The click command line: thin commands that call one core function each and render its result."""
