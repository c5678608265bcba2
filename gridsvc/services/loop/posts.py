"""Service posts (服务岗位): a community opens posts of the configured kinds with a capacity;
a member of the community claims at most N (``LoopConfig.max_posts_per_member``, default 2)
for a period, and may release a claim (so may staff).

The limit of N is held by the database: each live claim takes the smallest free of the
member's slots 1..N, and (member, slot) is unique, so two claims made at once cannot both
take the last slot. Lowering N later does not cancel claims already held (their slot keeps
the limit it was made under). A post's capacity is checked in the same write transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from gridsvc.access import Principal, Role
from gridsvc.services.context import Services
from gridsvc.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridsvc.services.loop.common import (
    audit_in,
    body_of,
    choice_of,
    config,
    date_of,
    insert_or_conflict,
    int_of,
    is_staff_of,
    iso,
    member_communities,
    now,
    text_of,
)
from gridsvc.storage.loop_models import PostClaim, ServicePost
from gridsvc.storage.models import Unit


def _describe(post: ServicePost, community: str, taken: int) -> dict[str, Any]:
    return {"id": post.id, "community": community, "kind": post.kind, "title": post.title,
            "capacity": post.capacity, "taken": taken, "starts_on": iso(post.starts_on),
            "ends_on": iso(post.ends_on), "status": post.status}


def _live_count(session: Any, post_id: int) -> int:
    return session.scalar(select(func.count()).select_from(PostClaim).where(
        PostClaim.post_id == post_id, PostClaim.slot.is_not(None))) or 0


def open_post(services: Services, actor: Principal, body: Any) -> dict[str, Any]:
    """Staff open a post in a community of their subtree."""
    data = body_of(body)
    code = text_of(data, "community", required=True, max_length=64)
    kind = choice_of(data, "kind", list(config(services).post_kinds))
    title = text_of(data, "title", max_length=200) or kind
    capacity = int_of(data, "capacity", 1, low=1, high=10_000)
    with services.db.write_session() as session:
        unit = session.scalar(select(Unit).where(Unit.code == code))
        if unit is None or not is_staff_of(session, actor, unit.id):
            raise NotFound(f"no community {code!r} in your subtree", field="community")
        post = ServicePost(community_id=unit.id, kind=kind, title=title,
                           capacity=capacity or 1, starts_on=date_of(data, "starts_on"),
                           ends_on=date_of(data, "ends_on"))
        session.add(post)
        session.flush()
        audit_in(session, actor, "post open", f"post:{post.id}", community=code)
        return _describe(post, unit.code, 0)


def list_posts(services: Services, _actor: Principal, community: str) -> list[dict[str, Any]]:
    """The open posts of a community (public: no member is named)."""
    with services.db.session() as session:
        unit = session.scalar(select(Unit).where(Unit.code == community))
        if unit is None:
            raise NotFound(f"no unit with code {community!r}", field="community")
        posts = session.scalars(select(ServicePost).where(
            ServicePost.community_id == unit.id, ServicePost.status == "open")
            .order_by(ServicePost.id))
        return [_describe(p, community, _live_count(session, p.id)) for p in posts]


def claim_post(services: Services, actor: Principal, post_id: int,
               body: Any = None) -> dict[str, Any]:
    """A member claims a post of their community, taking one of their N slots."""
    data = body_of(body or {})
    if actor.role is not Role.MEMBER or actor.member_id is None:
        raise Forbidden("members claim posts (a member token)")
    limit = config(services).max_posts_per_member
    with services.db.write_session() as session:
        post = session.scalar(select(ServicePost).where(ServicePost.id == post_id)
                              .with_for_update())
        if post is None or post.status != "open":
            raise NotFound(f"no open post with id {post_id}", field="post_id")
        if post.community_id not in member_communities(session, actor.member_id):
            raise Forbidden("a member claims posts of the community where they live or where "
                            "their work unit reported")
        live = list(session.scalars(select(PostClaim).where(
            PostClaim.member_id == actor.member_id, PostClaim.slot.is_not(None))))
        if any(c.post_id == post.id for c in live):
            raise Conflict("you hold this post already")
        free = sorted(set(range(1, limit + 1)) - {c.slot for c in live})
        if not free:
            raise Conflict(f"a member holds at most {limit} posts; release one first",
                           limit=limit)
        if _live_count(session, post.id) >= post.capacity:
            raise Conflict("the post is full", capacity=post.capacity)
        claim = PostClaim(post_id=post.id, member_id=actor.member_id, slot=free[0],
                          slot_limit=limit, period_start=date_of(data, "period_start"),
                          period_end=date_of(data, "period_end"))
        insert_or_conflict(session, claim, Conflict(
            f"a member holds at most {limit} posts", limit=limit))
        audit_in(session, actor, "post claim", f"post:{post.id}", claim=claim.id)
        return {"id": claim.id, "post_id": post.id, "member_id": actor.member_id,
                "slot": claim.slot, "claimed_at": iso(claim.claimed_at)}


def release_claim(services: Services, actor: Principal, claim_id: int) -> dict[str, Any]:
    """The member (or staff of the post's community) releases a live claim."""
    with services.db.write_session() as session:
        claim = session.get(PostClaim, claim_id)
        post = session.get(ServicePost, claim.post_id) if claim else None
        if claim is None or post is None:
            raise NotFound(f"no post claim with id {claim_id}", field="claim_id")
        own = actor.role is Role.MEMBER and actor.member_id == claim.member_id
        if not own and not is_staff_of(session, actor, post.community_id):
            raise NotFound(f"no post claim with id {claim_id}", field="claim_id")
        if claim.slot is None:
            raise InvalidInput("this claim is released already", field="claim_id")
        claim.slot, claim.released_at = None, now()
        audit_in(session, actor, "post release", f"post:{post.id}", claim=claim.id)
        return {"id": claim.id, "post_id": post.id, "released_at": iso(claim.released_at)}
