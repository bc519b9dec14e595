"""Sync stage: one command's composition (locate, recover, assess, upload, build, deploy, record),
sharded sites, rollback, promote, prune, status, urls."""
