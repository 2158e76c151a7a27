"""Docker-free local stand-in for `sam local start-api` / `sam local invoke`, driven by template.yaml."""
