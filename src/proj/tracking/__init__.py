"""The run record: dataclasses, the store interface and its SQLite implementation, and ingestion."""
