"""Keeping the services a template generated in step with it.

The fleet of each template, its versions, and update changes.
"""
