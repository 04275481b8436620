"""``sqlite_store(path)``: a feedback store on a migrated SQLite file, as the app opens it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cds_service.feedback_store import FeedbackStore
from cds_service.storage.database import SqliteDatabase
from cds_service.storage.migrations import migrate


def sqlite_store(path: Path, **options: Any) -> FeedbackStore:
    db = SqliteDatabase(path)
    migrate(db)
    return FeedbackStore(db, **options)
