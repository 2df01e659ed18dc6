"""The template registry: the Copier templates the portal offers on its Create page."""
