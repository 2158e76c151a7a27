"""Shared code of the Sessions API: settings, identity, errors, models, logic and data access."""
