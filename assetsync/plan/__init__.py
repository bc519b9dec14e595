"""Plan stage (pure): the assessment of local vs recorded vs live, asset plans, shard placement."""
