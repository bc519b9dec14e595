"""State stage: the SQLite manifest (schema, records, journal, ledger) and the last sync's outcome."""
