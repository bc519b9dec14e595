"""State stage: the SQLite manifest (schema, records, journal, ledger), the last sync's outcome."""
