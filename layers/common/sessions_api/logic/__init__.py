"""Use cases: plain Python that receives repositories and returns plain data."""
