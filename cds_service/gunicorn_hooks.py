"""Gunicorn server hooks, loaded by ``sarcoma-cds serve`` as ``-c python:cds_service.gunicorn_hooks`` when
``CDS_METRICS`` is on. Gunicorn reads only the names of its own settings from this module.
"""

from __future__ import annotations

from typing import Any

from .metrics import mark_worker_dead


def child_exit(server: Any, worker: Any) -> None:
    """In the master, after a worker has exited: prometheus-client's ``mark_process_dead`` for its pid."""
    mark_worker_dead(worker.pid)
