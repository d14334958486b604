"""Migrations are a deploy step: an empty database upgrades to head and matches the models."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, select, text
from sqlmodel import SQLModel

import service.store.tables  # noqa: F401  # registers the tables on SQLModel.metadata
from service.domain.usage import TokenCounts, UsageKey, UsageRow
from service.errors import SchemaNotCurrent
from service.store.engine import make_engine, transaction
from service.store.migrations import (
    alembic_config,
    head_of_files,
    head_revision,
    migrations_dir,
    require_current_schema,
    upgrade,
)
from service.store.tables import SERIES, SERIES_FIELDS, USAGE_ROWS
from service.store.usage_booking import book_usage
from tests.helpers import flat_price


def test_upgrade_reaches_head_and_autogenerate_finds_nothing(engine: Engine) -> None:
    """After `db upgrade`, autogenerate sees no difference between models and schema."""
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert context.get_current_revision() == head
        assert compare_metadata(context, SQLModel.metadata) == []


def test_upgrade_is_idempotent(engine: Engine) -> None:
    """Running the upgrade again (every `once` does) changes nothing and does not fail."""
    upgrade(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []


def test_upgrade_from_0002_backfills_where_collection_started(db_url: str) -> None:
    """A database collected before 0003 learns its collection start from its oldest bucket."""
    engine = make_engine(db_url)
    config = alembic_config(engine)
    command.upgrade(config, "0002")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO usage (bucket_start, bucket_width, model, api_key_id, workspace_id, "
                "service_tier, context_window, inference_geo, uncached_input_tokens, "
                "cache_creation_5m_tokens, cache_creation_1h_tokens, cache_read_tokens, "
                "output_tokens, web_search_requests, cost_nanos, charged_nanos, estimated, "
                "first_seen_at, updated_at) VALUES (:start, '1h', 'm', '', '', '', '', '', "
                "1, 0, 0, 0, 0, 0, 1000, 0, false, :start, :start)"
            ),
            {"start": "2026-10-05 03:00:00.000000"},
        )
        connection.execute(text("INSERT INTO collection_state (bucket_width) VALUES ('1h')"))
    upgrade(engine)
    with engine.connect() as connection:
        started = connection.execute(
            text("SELECT collected_from FROM collection_state")
        ).scalar_one()
    engine.dispose()
    assert str(started).startswith("2026-10-05 03:00:00")


@pytest.mark.parametrize("trial", range(3))
def test_instances_migrating_together_migrate_once(db_url: str, tmp_path: Path, trial: int) -> None:
    """Three processes upgrading one empty database at once all succeed; the schema is at head."""
    environment = {
        "PATH": "/usr/bin:/bin",
        "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-migration-race",
        "CREDITWATCH_DATABASE_URL": db_url,
    }
    upgrades = [
        subprocess.Popen(
            [sys.executable, "-m", "service", "db", "upgrade"],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [(process.wait(timeout=120), *process.communicate()) for process in upgrades]
    assert [code for code, _, _ in outcomes] == [0, 0, 0], [err for _, _, err in outcomes]
    engine = make_engine(db_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert context.get_current_revision() == head_revision()
        assert compare_metadata(context, SQLModel.metadata) == []
    engine.dispose()


def test_the_migrations_are_found_beside_the_package() -> None:
    """From the checkout (editable install) the migrations are alembic/ with its versions."""
    assert (migrations_dir() / "env.py").is_file()
    assert (migrations_dir() / "versions").is_dir()


def test_the_head_read_from_the_files_is_alembics() -> None:
    """The head found without Alembic, from the migrations' source, is the one Alembic finds."""
    assert head_of_files(migrations_dir() / "versions") == head_revision()


def _migration(folder: Path, name: str, revision: str, down: str) -> None:
    (folder / name).write_text(f'revision: str = "{revision}"\ndown_revision = {down}\n')


@pytest.mark.parametrize(
    ("third", "why"),
    [
        ('revision = "0003"\ndown_revision = ("0001", "0002")\n', "a merge"),
        ('revision = "0003"\ndown_revision = "0001"\n', "a branch: two heads"),
        ('revision = "0003"\ndown_revision = "0009"\n', "an unknown parent"),
        ('revision = "0002"\ndown_revision = "0001"\n', "a revision twice"),
        ('revision = "00" + "03"\ndown_revision = "0002"\n', "a computed revision"),
        ('revision = "0003"\ndown_revision = "0002"\nbranch_labels = ("x",)\n', "a label"),
        ('revision = "0003"\ndown_revision = "0002"\ndepends_on = "0001"\n', "a dependency"),
        ('down_revision = "0002"\n', "no revision"),
        ("revision = (\n", "a syntax error"),
    ],
)
def test_only_one_plain_line_of_migrations_has_a_head_without_alembic(
    tmp_path: Path, third: str, why: str
) -> None:
    """Anything but one line of plainly declared revisions is left to Alembic (None)."""
    _migration(tmp_path, "0001_a.py", "0001", "None")
    _migration(tmp_path, "0002_b.py", "0002", '"0001"')
    (tmp_path / "__init__.py").write_text('revision = "0009"\n')
    (tmp_path / "notes.txt").write_text("not a migration")
    assert head_of_files(tmp_path) == "0002"
    (tmp_path / "0003_c.py").write_text(third)
    assert head_of_files(tmp_path) is None, why


def test_a_cycle_in_the_migrations_has_no_head_without_alembic(tmp_path: Path) -> None:
    """A line with a loop of revisions beside it is not one line: left to Alembic."""
    _migration(tmp_path, "0001_a.py", "0001", "None")
    _migration(tmp_path, "0002_b.py", "0002", '"0001"')
    _migration(tmp_path, "0003_c.py", "0003", '"0004"')
    _migration(tmp_path, "0004_d.py", "0004", '"0003"')
    assert head_of_files(tmp_path) is None


def test_a_ledger_at_head_is_opened_without_importing_alembic(engine: Engine) -> None:
    """The daemon's start and the reading commands' check on a current ledger load no Alembic:
    one query of the version table answers (about 10 MiB of resident memory saved)."""
    probe = (
        "import sys\n"
        "from service.store.engine import make_engine\n"
        "from service.store.migrations import require_current_schema, upgrade\n"
        f"url = {engine.url.render_as_string(hide_password=False)!r}\n"
        "upgrade(make_engine(url))\n"
        "require_current_schema(make_engine(url, reading=True))\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('alembic', 'mako')))"
    )
    ran = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]"


def test_a_ledger_behind_head_is_still_migrated_and_checked_by_alembic(db_url: str) -> None:
    """Behind head, upgrade migrates and the check refuses it, as Alembic says."""
    engine = make_engine(db_url)
    command.upgrade(alembic_config(engine), "0002")
    with pytest.raises(SchemaNotCurrent, match="at revision 0002, this creditwatch needs"):
        require_current_schema(engine)
    upgrade(engine)
    require_current_schema(engine)
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head_revision()
    engine.dispose()


GROUPINGS_0007 = [
    ("claude-haiku-4-5", "apikey_a", "wrkspc_a", "standard", "0-200k", "global"),
    ("claude-haiku-4-5", "apikey_a", "", "standard", "0-200k", "global"),
    ("claude-haiku-4-5", "", "", "", "", ""),
    ("claude-sonnet-4-5", "apikey_b", "wrkspc_a", "batch", "200k-1M", "us"),
]


def test_upgrade_to_0008_moves_each_rows_grouping_to_its_series_and_back(db_url: str) -> None:
    """Rows stored before 0008 keep their ids, counts and costs, each under the series of its
    own six strings (one series per distinct grouping, ``""`` kept apart from a value); a
    re-read books nothing new; downgrading puts the strings back on every row."""
    engine = make_engine(db_url)
    config = alembic_config(engine)
    command.upgrade(config, "0007")
    hours = ["2026-10-05 03:00:00.000000", "2026-10-05 04:00:00.000000"]
    before = {}
    with engine.begin() as connection:
        for hour_index, hour in enumerate(hours):
            for index, grouping in enumerate(GROUPINGS_0007):
                cost = 1000 * (index + 1) + hour_index
                row_id = connection.execute(
                    text(
                        "INSERT INTO usage (bucket_start, bucket_width, model, api_key_id, "
                        "workspace_id, service_tier, context_window, inference_geo, "
                        "uncached_input_tokens, cache_creation_5m_tokens, "
                        "cache_creation_1h_tokens, cache_read_tokens, output_tokens, "
                        "web_search_requests, cost_nanos, charged_nanos, estimated, "
                        "first_seen_at, updated_at) VALUES (:start, '1h', :m, :k, :w, :t, :c, "
                        ":g, :n, 0, 0, 0, 0, 0, :cost, :cost, false, :start, :start) "
                        "RETURNING id"
                    ),
                    dict(zip("mkwtcg", grouping, strict=True), start=hour, n=index, cost=cost),
                ).scalar_one()
                before[row_id] = (hour[:19], *grouping, index, cost)
    upgrade(engine)
    with engine.connect() as connection:
        after = {
            r.id: (
                str(r.bucket_start)[:19],
                *(getattr(r, f) for f in SERIES_FIELDS),
                r.uncached_input_tokens,
                r.cost_nanos,
            )
            for r in connection.execute(select(USAGE_ROWS))
        }
        series = connection.execute(select(func.count()).select_from(SERIES)).scalar_one()
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []
    assert after == before
    assert series == len(GROUPINGS_0007)
    reread = [
        UsageRow(
            UsageKey(
                datetime.fromisoformat(hour).replace(tzinfo=UTC),
                "1h",
                *(value or None for value in grouping),
            ),
            TokenCounts(uncached_input_tokens=index),
        )
        for hour in hours
        for index, grouping in enumerate(GROUPINGS_0007)
    ]
    with transaction(engine) as session:
        booked = book_usage(session, reread, flat_price, now=datetime.now(UTC))
    assert (booked.new_rows, booked.unchanged_rows) == (0, len(reread))
    command.downgrade(config, "0007")
    with engine.connect() as connection:
        restored = {
            r[0]: (str(r[1])[:19], *r[2:])
            for r in connection.execute(
                text(
                    "SELECT id, bucket_start, model, api_key_id, workspace_id, service_tier, "
                    "context_window, inference_geo, uncached_input_tokens, cost_nanos FROM usage"
                )
            )
        }
    assert restored == before
    upgrade(engine)
    engine.dispose()
