"""DeepScreen's shared domain, imported by both the API (`backend`) and the worker (`worker`).

Settings, the database, logs, the queue, domain errors, and each domain's models, repository and
service live here. Nothing in `core` imports FastAPI, Starlette, `backend` or torch (a test
enforces it), so the worker runs the same job rules as the API without loading the HTTP layer.
See docs/architecture.md.
"""
