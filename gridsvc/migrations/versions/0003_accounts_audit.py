"""API tokens, the audit log, and who uploaded a roster.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("scope_code", sa.String(64)),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), index=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("actor", sa.String(100), nullable=False, index=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("token_id", sa.Integer),
        sa.Column("action", sa.String(100), nullable=False, index=True),
        sa.Column("target", sa.String(200), index=True),
        sa.Column("result", sa.String(100), nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("remote", sa.String(64)),
    )
    with op.batch_alter_table("roster_imports") as batch:
        batch.add_column(sa.Column("token_id", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("roster_imports") as batch:
        batch.drop_column("token_id")
    op.drop_table("audit_log")
    op.drop_table("api_tokens")
