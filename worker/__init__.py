"""The Celery worker: thin glue between job rows and the analysis pipeline.

Start it with `celery -A worker.app worker -Q images,videos`. Importing `worker.app` does not
import torch; the pipeline is loaded once per worker process, on first use.
"""
