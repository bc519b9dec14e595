"""Scan stage: walk the source folder, ignore and deny rules, the stat cache, hashing."""
