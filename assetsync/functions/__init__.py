"""Functions stage: Toolkit naming rules, the functions folder, package.json Dependencies and
.env Variables."""
