"""Prepare stage: classify and transform the scan into the publish set; every check runs here."""
