"""Alembic environment. Run through ``gridsvc.storage.schema.upgrade``, which passes a
live connection in ``config.attributes["connection"]``."""

from alembic import context
from geoalchemy2 import alembic_helpers

from gridsvc.storage.models import Base
from gridsvc.storage.schema import include_object

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    include_object=include_object,
    process_revision_directives=alembic_helpers.writer,
    render_item=alembic_helpers.render_item,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
