"""Trio layers: one small async wrapper around one policy object each."""
