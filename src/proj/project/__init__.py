"""Reading an MLproject: the spec (entry points, environments) and its typed parameters."""
