"""The service loop (双服务) use cases, Flask-free: needs (``needs``), their transitions
(``workflow.act``), service posts (``posts``), evaluations (``ratings``), the points ledger
(``points``) and notifications (``outbox``). The rules are data in ``gridsvc.domain.loop``,
the tables in ``gridsvc.storage.loop_models``.

Each use case is one transaction (``Database.write_session``) holding its change, its update
row, its audit entry, its notifications and its points: they commit or roll back together.
"""
