"""The leader lock on PostgreSQL, directly: one holder per schema, released on release() or when
the holder's connection is cut, and seen by ``current_leader``; SQLite's one instance leads."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from service.store.leadership import (
    APPLICATION_PREFIX,
    PostgresLeadership,
    SoleInstance,
    current_leader,
    leadership_for,
)

POSTGRES_ONLY = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def with_schema(url: str, schema: str) -> str:
    parsed = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return parsed.render_as_string(hide_password=False)


@pytest.fixture
def other_schema(db_url: str) -> Iterator[str]:
    """A second fresh schema on the same server as ``db_url``."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(db_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield with_schema(db_url, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass
class Contender:
    name: str
    leadership: PostgresLeadership

    def hold(self) -> bool:
        return self.leadership.hold()


@pytest.fixture
def contenders(db_url: str) -> Iterator[list[Contender]]:
    """Two instances, named uniquely, after one lock."""
    run = uuid.uuid4().hex[:8]
    names = [f"test {run} {name}" for name in ("a", "b")]
    made = [Contender(name, PostgresLeadership(db_url, name)) for name in names]
    yield made
    for contender in made:
        contender.leadership.release()


def leader_of(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            found = current_leader(session)
            return None if found is None else found.instance
    finally:
        engine.dispose()


def terminate(url: str, instance: str) -> int:
    """pg_terminate_backend of ``instance``'s lock connection; how many backends it ended."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            ended = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": APPLICATION_PREFIX + instance},
            ).all()
            return sum(bool(row[0]) for row in ended)
    finally:
        engine.dispose()


@POSTGRES_ONLY
def test_only_one_instance_holds_the_lock(db_url: str, contenders: list[Contender]) -> None:
    """The first to ask leads; the other is refused, and both answers hold on asking again."""
    first, second = contenders
    assert first.hold() is True
    assert second.hold() is False
    assert [first.hold(), second.hold(), first.hold()] == [True, False, True]
    assert leader_of(db_url) == first.name


@POSTGRES_ONLY
def test_release_lets_the_other_instance_lead(db_url: str, contenders: list[Contender]) -> None:
    """After a clean release the other instance takes the lead at its next try."""
    first, second = contenders
    assert first.hold() is True
    assert second.hold() is False
    first.leadership.release()
    assert first.leadership.held is False
    assert leader_of(db_url) is None
    assert second.hold() is True
    assert leader_of(db_url) == second.name


@POSTGRES_ONLY
def test_a_cut_connection_loses_the_lead_to_the_other(
    db_url: str, contenders: list[Contender]
) -> None:
    """The holder's backend terminated: its next hold() is False, the other's True, and the
    old holder, on a new connection, stays refused while the other leads."""
    first, second = contenders
    assert first.hold() is True
    assert second.hold() is False
    assert terminate(db_url, first.name) == 1
    assert first.hold() is False
    assert second.hold() is True
    assert first.hold() is False
    assert leader_of(db_url) == second.name


@POSTGRES_ONLY
def test_a_cut_connection_retakes_a_free_lock(db_url: str, contenders: list[Contender]) -> None:
    """With no other contender, the old holder notices the cut once, then leads again."""
    first, _ = contenders
    assert first.hold() is True
    assert terminate(db_url, first.name) == 1
    assert first.hold() is False
    assert first.hold() is True
    assert leader_of(db_url) == first.name


@POSTGRES_ONLY
def test_schemas_have_leaders_of_their_own(db_url: str, other_schema: str) -> None:
    """A leader in one schema does not stop another schema's instance from leading."""
    run = uuid.uuid4().hex[:8]
    here = PostgresLeadership(db_url, f"test {run} here")
    there = PostgresLeadership(other_schema, f"test {run} there")
    rival = PostgresLeadership(other_schema, f"test {run} rival")
    try:
        assert here.hold() is True
        assert there.hold() is True
        assert rival.hold() is False
        assert leader_of(db_url) == f"test {run} here"
        assert leader_of(other_schema) == f"test {run} there"
    finally:
        for leadership in (here, there, rival):
            leadership.release()


@POSTGRES_ONLY
def test_no_leader_while_only_another_schema_has_one(db_url: str, other_schema: str) -> None:
    """current_leader is None in a schema whose lock nobody holds, whoever leads elsewhere."""
    elsewhere = PostgresLeadership(other_schema, f"test {uuid.uuid4().hex[:8]} elsewhere")
    try:
        assert elsewhere.hold() is True
        assert leader_of(db_url) is None
    finally:
        elsewhere.release()


def test_sqlite_has_one_instance_which_always_leads(tmp_path: Path) -> None:
    """SQLite gets SoleInstance: it holds before and after a release."""
    leadership = leadership_for(f"sqlite:///{tmp_path / 'creditwatch.db'}")
    assert isinstance(leadership, SoleInstance)
    assert leadership.hold() is True
    leadership.release()
    assert leadership.hold() is True


@POSTGRES_ONLY
def test_postgres_gets_the_advisory_lock(db_url: str) -> None:
    """A PostgreSQL URL (plain postgresql:// too) gets the lock, named after the instance."""
    plain = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    leadership = leadership_for(plain, "test plain")
    try:
        assert isinstance(leadership, PostgresLeadership)
        assert leadership.hold() is True
        assert leader_of(db_url) == "test plain"
    finally:
        leadership.release()
