"""Users, permissions, API tokens and the audit log of a tracking server (no web code: server.auth serves it)."""
