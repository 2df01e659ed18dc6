"""The only place that talks to external systems; each behind a small Protocol with a fake."""
