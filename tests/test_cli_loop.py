"""The loop's commands on both databases: a resident recorded, a token for them, the outbox
listed and sent."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gridsvc.cli import cli

pytestmark = pytest.mark.storage


@pytest.fixture
def run(settings, monkeypatch):
    monkeypatch.setenv("GRIDSVC_DATABASE_URL", settings.database_url)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    assert invoke("init-db").exit_code == 0
    return invoke


def test_resident_token_and_outbox(run):
    added = run("resident", "add", "--name", "王阿姨", "--phone", "138 1111 2222")
    assert added.exit_code == 0, added.output
    resident_id = added.output.strip()
    twice = run("resident", "add", "--name", "王阿姨", "--phone", "13811112222")
    assert twice.exit_code != 0 and "already" in twice.output
    made = run("token", "create", "--name", "resident", "--role", "resident",
               "--resident", resident_id)
    assert made.exit_code == 0 and made.output.startswith("gs_")
    wrong = run("token", "create", "--name", "r", "--role", "resident")
    assert wrong.exit_code != 0 and "resident" in wrong.output
    run("jobs", "run", "--only", "points-month-end", "--force")
    listed = run("outbox", "list")
    assert listed.exit_code == 0
    assert "王阿姨" not in listed.output and "13811112222" not in listed.output
    sent = run("outbox", "send")
    assert sent.exit_code == 0 and "messages sent" in sent.output
