"""`vlmctl serve`: Plan → vLLM argv/env, process supervision, and the embedded CPU demo server."""
