"""Running processes: the one subprocess wrapper (process groups, tee to logs, signal escalation)."""
