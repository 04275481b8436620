"""WSGI entry point for gunicorn: ``cds_service.wsgi:app``."""

import ctypes

from . import create_app
from .runtime import tune_collector

# glibc: blocks of 128 KiB and more (FHIR answers, their buffers) are always mapped on their own and
# returned to the system when freed, and the request and fetch threads share two heaps rather than
# one each; otherwise freed answers stay in per-thread heaps and a worker's memory only grows.
try:
    _libc = ctypes.CDLL("libc.so.6")
    _libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD (fixed, not raised as blocks are freed)
    _libc.mallopt(-8, 2)  # M_ARENA_MAX
except (OSError, AttributeError):  # not glibc: its own policy applies
    pass

app = create_app()
tune_collector()
