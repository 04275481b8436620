"""WSGI entry point for gunicorn: ``cds_service.wsgi:app``."""

import ctypes
import gc

from . import create_app

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

# A hook call allocates tens of thousands of short-lived objects (FHIR models); the knowledge base
# and code tables live as long as the worker. Freezing the latter keeps them out of every collection,
# and a larger young generation collects less often: 5,000-resource charts ~30% faster, measured
# with bench/run.py.
gc.freeze()
gc.set_threshold(10_000, 20, 20)
