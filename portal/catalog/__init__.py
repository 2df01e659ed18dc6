"""The Backstage-compatible software catalog: import, relations, search, pages and API."""
