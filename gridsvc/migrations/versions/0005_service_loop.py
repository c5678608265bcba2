"""The service loop (双服务): residents, service posts and claims, needs and their updates,
orders, service records and corrections, evaluations, the points ledger, the outbox; tokens
of residents and of work-unit secretaries (gridsvc.storage.loop_models).

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = (
    "record_corrections",
    "points_ledger",
    "evaluations",
    "service_records",
    "post_claims",
    "orders",
    "outbox",
    "need_updates",
    "service_posts",
    "needs",
    "residents",
)


def upgrade() -> None:
    op.create_table(
        "residents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("phone"),
    )
    op.create_table(
        "needs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ledger_no", sa.String(length=100), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("urgency", sa.String(length=20), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("persons_needed", sa.Integer(), nullable=False),
        sa.Column("est_hours", sa.Float(), nullable=True),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("input_point", sa.JSON(), nullable=True),
        sa.Column("geocoded_lon", sa.Double(), nullable=True),
        sa.Column("geocoded_lat", sa.Double(), nullable=True),
        sa.Column("lon", sa.Double(), nullable=True),
        sa.Column("lat", sa.Double(), nullable=True),
        sa.Column("building_id", sa.Integer(), nullable=True),
        sa.Column("grid_id", sa.Integer(), nullable=True),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("street_id", sa.Integer(), nullable=True),
        sa.Column("household_id", sa.Integer(), nullable=True),
        sa.Column("boundary_revision", sa.Integer(), nullable=False),
        sa.Column("route", sa.JSON(), nullable=False),
        sa.Column("reporter_kind", sa.String(length=20), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column("reporter_name", sa.String(length=100), nullable=True),
        sa.Column("reporter_phone", sa.String(length=20), nullable=True),
        sa.Column("proxy", sa.String(length=100), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("consent", sa.Boolean(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("outcome", sa.String(length=30), nullable=True),
        sa.Column("duplicate_of_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "state IN ('submitted', 'filed', 'open', 'claimed', 'dispatched', 'accepted', "
            "'in_service', 'done', 'closed')",
            name="ck_needs_state",
        ),
        sa.CheckConstraint("persons_needed >= 1", name="ck_needs_persons"),
        sa.ForeignKeyConstraint(
            ["building_id"],
            ["units.id"],
        ),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["units.id"],
        ),
        sa.ForeignKeyConstraint(
            ["duplicate_of_id"],
            ["needs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"],
            ["units.id"],
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["units.id"],
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
        ),
        sa.ForeignKeyConstraint(
            ["street_id"],
            ["units.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("community_id", "year", "seq", name="uq_needs_ledger_seq"),
        sa.UniqueConstraint("ledger_no"),
    )
    op.create_index(op.f("ix_needs_building_id"), "needs", ["building_id"], unique=False)
    op.create_index(op.f("ix_needs_community_id"), "needs", ["community_id"], unique=False)
    op.create_index(op.f("ix_needs_grid_id"), "needs", ["grid_id"], unique=False)
    op.create_index(op.f("ix_needs_household_id"), "needs", ["household_id"], unique=False)
    op.create_index(op.f("ix_needs_resident_id"), "needs", ["resident_id"], unique=False)
    op.create_index(op.f("ix_needs_state"), "needs", ["state"], unique=False)
    op.create_index(op.f("ix_needs_street_id"), "needs", ["street_id"], unique=False)
    op.create_table(
        "service_posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("capacity >= 1", name="ck_service_posts_capacity"),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["units.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_service_posts_community_id"), "service_posts", ["community_id"], unique=False
    )
    op.create_table(
        "need_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("need_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=True),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["need_id"],
            ["needs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_need_updates_need_id"), "need_updates", ["need_id"], unique=False)
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_kind", sa.String(length=20), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(length=50), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("need_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["need_id"],
            ["needs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_outbox_need_id"), "outbox", ["need_id"], unique=False)
    op.create_index(op.f("ix_outbox_status"), "outbox", ["status"], unique=False)
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("need_id", sa.Integer(), nullable=False),
        sa.Column("live_need_id", sa.Integer(), nullable=True),
        sa.Column("taker_kind", sa.String(length=20), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("work_org_id", sa.Integer(), nullable=True),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("offered_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("respond_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=500), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(taker_kind = 'member' AND member_id IS NOT NULL) OR "
            "(taker_kind = 'work_org' AND work_org_id IS NOT NULL)",
            name="ck_orders_taker",
        ),
        sa.CheckConstraint(
            "state IN ('offered', 'active', 'in_service', 'done', 'declined', 'released', "
            "'revoked', 'withdrawn', 'completed')",
            name="ck_orders_state",
        ),
        sa.ForeignKeyConstraint(
            ["live_need_id"],
            ["needs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
        ),
        sa.ForeignKeyConstraint(
            ["need_id"],
            ["needs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["work_org_id"],
            ["work_orgs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("live_need_id"),
    )
    op.create_index(op.f("ix_orders_member_id"), "orders", ["member_id"], unique=False)
    op.create_index(op.f("ix_orders_need_id"), "orders", ["need_id"], unique=False)
    op.create_index(op.f("ix_orders_work_org_id"), "orders", ["work_org_id"], unique=False)
    op.create_table(
        "post_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("slot_limit", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(slot IS NULL) = (released_at IS NOT NULL)", name="ck_post_claims_live"
        ),
        sa.CheckConstraint(
            "slot IS NULL OR (slot >= 1 AND slot <= slot_limit)", name="ck_post_claims_slot"
        ),
        sa.CheckConstraint("slot_limit BETWEEN 1 AND 10", name="ck_post_claims_slot_limit"),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["service_posts.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("member_id", "slot", name="uq_post_claims_member_slot"),
    )
    op.create_index(op.f("ix_post_claims_member_id"), "post_claims", ["member_id"], unique=False)
    op.create_index(op.f("ix_post_claims_post_id"), "post_claims", ["post_id"], unique=False)
    op.create_table(
        "service_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("need_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.String(length=1000), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("confirmed_by", sa.String(length=20), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_by", sa.String(length=100), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("example_week", sa.String(length=10), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("hours >= 0", name="ck_service_records_hours"),
        sa.ForeignKeyConstraint(
            ["need_id"],
            ["needs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_service_records_need_id"), "service_records", ["need_id"], unique=False
    )
    op.create_index(
        op.f("ix_service_records_order_id"), "service_records", ["order_id"], unique=False
    )
    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("need_id", sa.Integer(), nullable=False),
        sa.Column("party", sa.String(length=20), nullable=False),
        sa.Column("rating", sa.String(length=20), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("comment", sa.String(length=500), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["need_id"],
            ["needs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["service_records.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("record_id", "party", name="uq_evaluations_party"),
    )
    op.create_index(op.f("ix_evaluations_need_id"), "evaluations", ["need_id"], unique=False)
    op.create_index(op.f("ix_evaluations_record_id"), "evaluations", ["record_id"], unique=False)
    op.create_table(
        "points_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_kind", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.Column("need_id", sa.Integer(), nullable=True),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("reverses_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["need_id"],
            ["needs.id"],
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["service_records.id"],
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["points_ledger.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reverses_id"),
        sa.UniqueConstraint(
            "subject_kind", "subject_id", "reason", "record_id", name="uq_points_award"
        ),
    )
    op.create_index(op.f("ix_points_ledger_at"), "points_ledger", ["at"], unique=False)
    op.create_index(op.f("ix_points_ledger_need_id"), "points_ledger", ["need_id"], unique=False)
    op.create_table(
        "record_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["service_records.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_record_corrections_record_id"), "record_corrections", ["record_id"], unique=False
    )
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("resident_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("work_org_id", sa.Integer(), nullable=True))
        batch.create_index("ix_api_tokens_resident_id", ["resident_id"], unique=False)
        batch.create_index("ix_api_tokens_work_org_id", ["work_org_id"], unique=False)
        batch.create_foreign_key("fk_api_tokens_work_org_id", "work_orgs", ["work_org_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_constraint("fk_api_tokens_work_org_id", type_="foreignkey")
        batch.drop_index("ix_api_tokens_work_org_id")
        batch.drop_index("ix_api_tokens_resident_id")
        batch.drop_column("work_org_id")
        batch.drop_column("resident_id")
    for table in TABLES:
        op.drop_table(table)
