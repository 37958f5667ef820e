"""mhinr.app: the HTTP service (FastAPI), its web page and the command line."""
