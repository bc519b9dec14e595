"""Remote stage: the HTTP session, one method per Serverless endpoint, typed resources, uploads,
the limiter."""
