"""Prepare stage: classify and transform scanned files into the publish set; every check runs here."""
