"""Allow ``python -m portal``."""

from portal.cli import app

app()
