"""HTML rendering: one Jinja environment, the base layout, static assets, page-vs-fragment."""
