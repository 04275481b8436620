"""Gunicorn's own lines (start-up, workers, timeouts) in the service's log format.

``sarcoma-cds serve`` passes ``--logger-class cds_service.gunicorn_logging.Logger``, so with
``CDS_LOG_FORMAT=json`` every line on stderr is a JSON object, gunicorn's included, and a log shipper
never meets a line it cannot parse. Kept apart from ``logs`` so the app does not import gunicorn.
"""

from __future__ import annotations

import os
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

from .logs import formatter


class Logger(GunicornLogger):  # type: ignore[misc]
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        chosen = formatter(os.environ.get("CDS_LOG_FORMAT", "text").strip().lower())
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(chosen)
