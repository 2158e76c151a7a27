"""The alternatives users would pick, written the way their docs and tutorials show them."""
