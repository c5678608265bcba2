"""The service loop (双服务) as data: the need's states, the actions between them and who may
take each, the kinds of need, outcomes, order states, evaluation parties and points rules.

Pure: no database, no Flask. ``gridsvc.services.loop`` applies these rules in transactions;
the README's state table is generated from ``TRANSITIONS`` (``state_table_markdown``) so the
two cannot drift.

Who may act is a *relationship* to the need, never just a role (SERVICE_LOOP.md: a transition
allowed to everyone holding a role let people advance others' cases):

=========  =============================================================================
staff      community staff whose subtree holds the community the need is routed to
           (admins count as staff everywhere)
taker      the current taker of the need's live order: the member it names, or the
           secretary (``unit`` role) of the work-unit organisation it names
member     a member whose home lies in the need's community, or whose work unit reported
           to it (may self-claim from the pool)
reporter   the resident who ordered the need (their own need only)
=========  =============================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class NeedState(StrEnum):
    SUBMITTED = "submitted"  # ordered by a resident or a proxy (居民点单), not yet filed
    FILED = "filed"  # 备案 by staff of the community that holds the point
    OPEN = "open"  # published to the claim pool
    CLAIMED = "claimed"  # a member self-claimed it (认领)
    DISPATCHED = "dispatched"  # the community dispatched it (社区下单), awaiting an answer
    ACCEPTED = "accepted"  # the dispatched taker accepted (接单)
    IN_SERVICE = "in_service"
    DONE = "done"  # the service record was submitted
    CLOSED = "closed"  # with an outcome; closed is not resolved


class Party(StrEnum):
    STAFF = "staff"
    TAKER = "taker"
    MEMBER = "member"
    REPORTER = "reporter"


class Outcome(StrEnum):
    RESOLVED = "resolved"
    PARTLY_RESOLVED = "partly_resolved"
    UNRESOLVED = "unresolved"
    WITHDRAWN = "withdrawn"
    DUPLICATE = "duplicate"
    REFERRED = "referred"  # 转12345 or a department
    NO_LONGER_NEEDED = "no_longer_needed"


#: Outcomes that count as resolved in the figures (closed and resolved are different figures).
RESOLVED_OUTCOMES = frozenset({Outcome.RESOLVED, Outcome.PARTLY_RESOLVED})
#: Outcomes staff may give when closing a need whose service is done.
SERVICE_OUTCOMES = frozenset({Outcome.RESOLVED, Outcome.PARTLY_RESOLVED, Outcome.UNRESOLVED})
#: Outcomes staff may give when closing a need nobody served.
DROP_OUTCOMES = frozenset({Outcome.DUPLICATE, Outcome.REFERRED, Outcome.NO_LONGER_NEEDED,
                           Outcome.UNRESOLVED})

S = NeedState
TAKEN = frozenset({S.CLAIMED, S.DISPATCHED, S.ACCEPTED, S.IN_SERVICE})
UNSERVED = frozenset({S.SUBMITTED, S.FILED, S.OPEN})


@dataclass(frozen=True)
class Transition:
    """An action on a need: the states it may start from, the state it leads to, who may take
    it, and whether a reason is required."""

    action: str
    sources: frozenset[NeedState]
    target: NeedState
    parties: frozenset[Party]
    reason_required: bool = False
    label: str = ""
    note: str = ""


def _t(action: str, sources: set[NeedState] | frozenset[NeedState], target: NeedState,
       parties: set[Party], *, reason: bool = False, label: str = "", note: str = "",
       ) -> Transition:
    return Transition(action, frozenset(sources), target, frozenset(parties), reason, label,
                      note)


TRANSITIONS: dict[str, Transition] = {t.action: t for t in (
    _t("file", {S.SUBMITTED}, S.FILED, {Party.STAFF}, label="备案"),
    _t("publish", {S.FILED}, S.OPEN, {Party.STAFF}, label="发布"),
    _t("claim", {S.OPEN}, S.CLAIMED, {Party.MEMBER}, label="认领",
       note="a member of the need's community; one live order per need"),
    _t("dispatch", {S.FILED, S.OPEN}, S.DISPATCHED, {Party.STAFF}, label="社区下单",
       note="to a member or a work-unit organisation, with a respond-by time"),
    _t("accept", {S.DISPATCHED}, S.ACCEPTED, {Party.TAKER}, label="接单"),
    _t("decline", {S.DISPATCHED}, S.OPEN, {Party.TAKER}, reason=True, label="拒单"),
    _t("start", {S.CLAIMED, S.ACCEPTED}, S.IN_SERVICE, {Party.TAKER}, label="开始服务"),
    _t("record", {S.IN_SERVICE}, S.DONE, {Party.TAKER}, label="提交服务记录",
       note="participants, hours, start, end, what was done"),
    _t("release", {S.CLAIMED, S.ACCEPTED, S.IN_SERVICE}, S.OPEN, {Party.TAKER}, reason=True,
       label="退单"),
    _t("revoke", TAKEN, S.OPEN, {Party.STAFF}, reason=True, label="撤单",
       note="双向制约: the community refuses a taker (e.g. cherry-picking)"),
    _t("close", {S.DONE} | UNSERVED, S.CLOSED, {Party.STAFF}, label="销号",
       note="outcome resolved / partly_resolved / unresolved after service; duplicate "
            "(naming the original), referred, no_longer_needed or unresolved before"),
    _t("withdraw", UNSERVED | TAKEN, S.CLOSED, {Party.REPORTER, Party.STAFF}, label="撤回",
       note="outcome withdrawn"),
    _t("reopen", {S.CLOSED}, S.OPEN, {Party.STAFF}, reason=True, label="重开",
       note="leaves an update; the need's points are reversed"),
)}

#: Actions that end the live order (its taker is no longer the taker).
ENDS_ORDER = {"decline": "declined", "release": "released", "revoke": "revoked",
              "withdraw": "withdrawn", "close": "completed"}


def allowed_actions(state: NeedState | str, parties: set[Party] | frozenset[Party]
                    ) -> list[str]:
    """The actions these parties may take from ``state``, in table order."""
    return [t.action for t in TRANSITIONS.values()
            if state in t.sources and t.parties & set(parties)]


def actions_from(state: NeedState | str) -> list[str]:
    """Every action that starts from ``state`` (whoever may take it)."""
    return [t.action for t in TRANSITIONS.values() if state in t.sources]


def state_table_markdown() -> str:
    """The state machine as the README's table: action, from, to, who, reason."""
    lines = ["| action | 中文 | from | to | who | reason |", "|---|---|---|---|---|---|"]
    for t in TRANSITIONS.values():
        sources = ", ".join(s.value for s in NeedState if s in t.sources)
        who = ", ".join(p.value for p in Party if p in t.parties)
        lines.append(f"| `{t.action}` | {t.label} | {sources} | {t.target.value} | {who} | "
                     f"{'required' if t.reason_required else '-'} |")
    return "\n".join(lines)


# --- needs -------------------------------------------------------------------------------------


class NeedKind(StrEnum):
    PUBLIC = "public"  # 公共需求
    FAMILY = "family"  # 家庭需求
    WISH = "wish"  # 个人心愿 / 微心愿


NEED_KIND_LABELS = {NeedKind.PUBLIC: "公共需求", NeedKind.FAMILY: "家庭需求",
                    NeedKind.WISH: "个人心愿"}
URGENCIES = ("low", "normal", "high", "urgent")
#: 走访, 热线, 线上, 意见箱, 心愿墙, other
CHANNELS = ("visit", "hotline", "online", "box", "wall", "other")
#: Who reported: the resident themselves, or a proxy recorded as such.
REPORTER_KINDS = ("resident", "household_head", "grid_worker", "staff")
#: Restricted beneficiary flags (seen by community staff and the micro-grid's 党员中心户 only).
BENEFICIARY_FLAGS = ("dibao", "living_alone_elderly", "disabled", "sanwu", "orphan", "child")


# --- orders ------------------------------------------------------------------------------------


class OrderState(StrEnum):
    OFFERED = "offered"  # dispatched, awaiting the taker's answer
    ACTIVE = "active"  # accepted, or self-claimed
    IN_SERVICE = "in_service"
    DONE = "done"  # record submitted, awaiting close
    DECLINED = "declined"
    RELEASED = "released"
    REVOKED = "revoked"
    WITHDRAWN = "withdrawn"
    COMPLETED = "completed"  # the need closed after the service


LIVE_ORDER_STATES = frozenset({OrderState.OFFERED, OrderState.ACTIVE, OrderState.IN_SERVICE,
                               OrderState.DONE})
TAKER_KINDS = ("member", "work_org")
ORIGINS = ("claim", "dispatch")


# --- configuration: posts, evaluation, points ---------------------------------------------------

#: The ten kinds of service post of Qianjiang (the default configuration).
QIANJIANG_POST_KINDS = (
    "基层党建引领", "疫情常态防控", "政策法规宣传", "生活便民服务", "公共文体娱乐",
    "社情民意收集", "邻里矛盾调解", "创文创卫活动", "邻里守望帮扶", "中心任务推进",
)

#: Ratings and their score (0..1). 1-5 stars are also accepted: (n - 1) / 4.
RATINGS = {"满意": 1.0, "基本满意": 0.6, "不满意": 0.0}


def rating_score(rating: str | int) -> float:
    """The score (0..1) of a rating: 满意 / 基本满意 / 不满意, or 1-5 stars."""
    if isinstance(rating, bool):
        raise ValueError("a rating is 满意, 基本满意, 不满意 or 1-5")
    if isinstance(rating, int):
        if 1 <= rating <= 5:
            return (rating - 1) / 4
        raise ValueError("a star rating is 1 to 5")
    if rating in RATINGS:
        return RATINGS[rating]
    raise ValueError(f"a rating is one of {', '.join(RATINGS)} or 1-5")


@dataclass(frozen=True)
class LoopConfig:
    """The loop's configuration (defaults: Qianjiang's posts, Tongchuan's points).

    - ``post_kinds``: the kinds of service post a community may open;
    - ``max_posts_per_member``: live post claims a member may hold (enforced by the database:
      each live claim takes one of the member's numbered slots 1..N);
    - ``weights``: evaluation parties and their weights (sum 1); ``rating_days``: a party
      that has not rated this many days after the record has its weight spread over the
      others in proportion to theirs;
    - ``talk_threshold``: yearly satisfaction below it puts a member on the talk list (约谈);
    - ``points``: +1 per completed service, +1 when rated well (every party rated, weighted
      score at least ``well_threshold``), +2 when staff choose it as the week's example;
    - ``disclose_days``: the taker reads the address and phone until this many days after
      the need closes;
    - ``claim_days``: an open need unclaimed this many days (by urgency) is escalated.
    """

    post_kinds: tuple[str, ...] = QIANJIANG_POST_KINDS
    max_posts_per_member: int = 2
    weights: dict[str, float] = field(default_factory=lambda: {
        "work_unit": 0.3, "community": 0.3, "resident": 0.4})
    rating_days: int = 14
    talk_threshold: float = 0.7
    well_threshold: float = 0.85
    points: dict[str, int] = field(default_factory=lambda: {
        "service": 1, "rated_well": 1, "example": 2})
    disclose_days: int = 7
    respond_hours: int = 48
    claim_days: dict[str, int] = field(default_factory=lambda: {
        "urgent": 1, "high": 3, "normal": 7, "low": 14})

    def __post_init__(self) -> None:
        if not 1 <= self.max_posts_per_member <= 10:
            raise ValueError("max_posts_per_member must be 1 to 10")
        if abs(sum(self.weights.values()) - 1.0) > 1e-6 or min(self.weights.values()) < 0:
            raise ValueError("evaluation weights must be >= 0 and sum to 1")


DEFAULT_CONFIG = LoopConfig()
EVALUATION_PARTIES = ("work_unit", "community", "resident")


def weighted_score(scores: dict[str, float], weights: dict[str, float],
                   *, final: bool) -> float | None:
    """The record's satisfaction (0..1) from each party's score.

    Until ``final`` (every party rated, or the rating window passed) a record with a missing
    party has no score (None). When final, the weights of parties that did not rate are
    spread over those that did in proportion to their weights; no rating at all is None.
    """
    rated = {p: s for p, s in scores.items() if p in weights}
    if not rated:
        return None
    if len(rated) < len([w for w in weights.values() if w > 0]) and not final:
        return None
    total = sum(weights[p] for p in rated)
    if total <= 0:
        return None
    return sum(weights[p] * s for p, s in rated.items()) / total


# --- periods -----------------------------------------------------------------------------------


def ledger_number(community_code: str, year: int, seq: int) -> str:
    """``320602001001-2026-0042``: the community's code, the year, the need's number in it."""
    return f"{community_code}-{year}-{seq:04d}"
