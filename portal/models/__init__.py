"""The Models area: the prompts of every service (and, with issue 16, the model registry)."""
