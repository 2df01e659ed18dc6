"""Tests of the detector service."""
