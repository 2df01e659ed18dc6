"""Tests of the Traces pages, API, receiver and store."""
