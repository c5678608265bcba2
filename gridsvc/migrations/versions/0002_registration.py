"""Gazetteer, work-unit organisations, members, roster imports and assignment history.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "gazetteer",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("district", sa.String(100)),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("unit_code", sa.String(64), index=True),
        sa.Column("source", sa.String(100), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "work_orgs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("office_address", sa.String(300)),
        sa.Column("lon", sa.Float),
        sa.Column("lat", sa.Float),
        sa.Column("contact_name", sa.String(100)),
        sa.Column("contact_phone", sa.String(40)),
        sa.Column("community_id", sa.Integer, sa.ForeignKey("units.id"), index=True),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("reason", sa.String(300)),
        sa.Column("match", sa.JSON, nullable=False),
        *_timestamps(),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False, unique=True),
        sa.Column("party_org", sa.String(200)),
        sa.Column("work_unit", sa.String(200)),
        sa.Column("work_org_id", sa.Integer, sa.ForeignKey("work_orgs.id"), index=True),
        sa.Column("home_address", sa.String(300)),
        sa.Column("lon", sa.Float),
        sa.Column("lat", sa.Float),
        sa.Column("input_point", sa.JSON),
        sa.Column("skills", sa.JSON, nullable=False),
        sa.Column("intentions", sa.JSON, nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("status", sa.String(30), nullable=False, index=True),
        sa.Column("reason", sa.String(300)),
        sa.Column("building_id", sa.Integer, sa.ForeignKey("units.id"), index=True),
        sa.Column("household_id", sa.Integer, sa.ForeignKey("units.id"), index=True),
        sa.Column("match", sa.JSON, nullable=False),
        *_timestamps(),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "roster_imports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("filename", sa.String(300), nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "roster_rows",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("import_id", sa.Integer, sa.ForeignKey("roster_imports.id"), index=True,
                  nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("status", sa.String(30), nullable=False, index=True),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("problems", sa.JSON, nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), index=True),
        sa.Column("work_org_id", sa.Integer, sa.ForeignKey("work_orgs.id"), index=True),
    )
    op.create_table(
        "assignment_history",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subject", sa.String(20), nullable=False),
        sa.Column("subject_id", sa.Integer, nullable=False, index=True),
        sa.Column("from_code", sa.String(64)),
        sa.Column("to_code", sa.String(64)),
        sa.Column("boundary_revision", sa.Integer, nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ("assignment_history", "roster_rows", "roster_imports", "members",
                  "work_orgs", "gazetteer"):
        op.drop_table(table)
