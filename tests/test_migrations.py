"""The Alembic migrations build exactly the schema the ORM models describe."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gridsvc.storage.models import Base
from gridsvc.storage.schema import include_object, is_current


def test_migrations_match_models(db):
    assert is_current(db)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={"include_object": include_object, "compare_type": False},
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
