"""Traces: the embedded OTLP/HTTP receiver, the span store and its retention (issue 17)."""
