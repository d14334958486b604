"""Where collection stands for one bucket width: the watermark and the latest outcome."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from service.domain.usage import BucketWidth
from service.errors import ConfigError
from service.store.tables import CollectionState
from service.store.usage_queries import usage_widths

MAX_ERROR_CHARS = 500


def collection_state(session: Session, width: BucketWidth) -> CollectionState:
    """The state row for ``width``, created (unflushed) when there is none yet."""
    state = session.get(CollectionState, width)
    if state is None:
        state = CollectionState(bucket_width=width)
        session.add(state)
    return state


def check_bucket_width(session: Session, width: BucketWidth) -> None:
    """Refuse to mix bucket widths: the same usage would be booked twice."""
    other = [w for w in usage_widths(session) if w != width]
    if other:
        raise ConfigError(
            "CREDITWATCH_BUCKET_WIDTH",
            f"the database already holds {other[0]} buckets; switching to {width} would count "
            "the same usage twice (set it back, or start a new database)",
            other[0],
        )


def record_failure(session: Session, width: BucketWidth, now: datetime, error: str) -> None:
    """A failed collection: keeps when failing began and the first line of the error."""
    state = collection_state(session, width)
    state.last_attempt_at = now
    state.failing_since = state.failing_since or now
    state.last_error = error.splitlines()[0][:MAX_ERROR_CHARS] if error else "unknown error"


def record_success(session: Session, width: BucketWidth, now: datetime) -> None:
    state = collection_state(session, width)
    state.last_success_at = now
    state.failing_since = None
    state.last_error = None
