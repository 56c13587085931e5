"""Shared fixtures; feature fixtures live in each test package's own conftest.py."""
