"""Self-registrations kept as requests (issue 9 item 2: no membership oracle): the public
answer is the same whether or not the phone is a member's; a duplicate waits for staff
(gridsvc.storage.models.RegistrationRequest).

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registration_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=30), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    op.create_index(op.f("ix_registration_requests_member_id"), "registration_requests",
                    ["member_id"], unique=False)
    op.create_index(op.f("ix_registration_requests_phone"), "registration_requests",
                    ["phone"], unique=False)
    op.create_index(op.f("ix_registration_requests_status"), "registration_requests",
                    ["status"], unique=False)


def downgrade() -> None:
    op.drop_table("registration_requests")
