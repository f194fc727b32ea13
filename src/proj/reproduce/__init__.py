"""Reproducing runs: rebuild from the record, rerun, and compare."""
