"""Pydantic models: `api` for what crosses HTTP, `entities` for what is stored."""
