"""One-time form tokens on both databases: a claim is taken once, old claims go away."""

from __future__ import annotations

from sqlalchemy import select

from conveyor.store import form_tokens
from conveyor.store.database import Database
from conveyor.store.schema import settings

NOW = 1_700_000_000_000_000


def test_a_token_is_claimed_once_and_its_result_found_again(db: Database) -> None:
    token = form_tokens.issue(NOW)
    assert form_tokens.issued_at(token) == NOW // 1_000_000 * 1_000_000
    with db.write() as conn:
        assert form_tokens.claim(conn, token, NOW) is None
        form_tokens.record(conn, token, "/automations/7?created=1")
    with db.write() as conn:
        assert form_tokens.claim(conn, token, NOW) == "/automations/7?created=1"
    # A claim rolled back with its transaction leaves the token free.
    other = form_tokens.issue(NOW)
    try:
        with db.write() as conn:
            assert form_tokens.claim(conn, other, NOW) is None
            raise RuntimeError("the create failed")
    except RuntimeError:
        pass
    with db.write() as conn:
        assert form_tokens.claim(conn, other, NOW) is None


def test_claims_older_than_a_day_are_removed_and_secrets_kept(db: Database) -> None:
    old = form_tokens.issue(NOW - form_tokens.MAX_AGE_US - 10_000_000)
    with db.write() as conn:
        form_tokens.claim(conn, old, NOW - form_tokens.MAX_AGE_US - 10_000_000)
        before = {row[0] for row in conn.execute(select(settings.c.key))}
    assert "form:" + old in before
    with db.write() as conn:
        form_tokens.claim(conn, form_tokens.issue(NOW), NOW)
        after = {row[0] for row in conn.execute(select(settings.c.key))}
    assert "form:" + old not in after
    assert {key for key in before if not key.startswith("form:")} <= after


def test_issued_at_refuses_what_it_did_not_issue() -> None:
    for bad in ("", "abc", "g" * 42, "F" * 42, form_tokens.issue(NOW) + "0"):
        assert form_tokens.issued_at(bad) is None
