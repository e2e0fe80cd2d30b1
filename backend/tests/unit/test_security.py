"""Access tokens: each is verified once per process, and its expiry is still checked on every use."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from app.core import security

SECRET = "a-test-secret-of-at-least-32-bytes!!"
STAMP = "0123456789abcdef0123456789abcdef"


def test_a_token_verified_while_valid_is_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    issued = datetime.now(UTC)
    token = security.create_access_token(7, STAMP, secret=SECRET, expires=timedelta(minutes=5))
    assert security.read_access_token(token, secret=SECRET) == (7, STAMP)  # verified, and remembered

    monkeypatch.setattr(security, "utcnow", lambda: issued + timedelta(minutes=5, seconds=1))
    with pytest.raises(security.InvalidToken, match="expired"):
        security.read_access_token(token, secret=SECRET)


def test_a_remembered_token_is_not_verified_again(monkeypatch: pytest.MonkeyPatch) -> None:
    token = security.create_access_token(8, STAMP, secret=SECRET, expires=timedelta(minutes=5))
    assert security.read_access_token(token, secret=SECRET) == (8, STAMP)
    calls = []
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(a))
    assert security.read_access_token(token, secret=SECRET) == (8, STAMP)
    assert calls == []


def test_a_token_is_remembered_per_secret() -> None:
    token = security.create_access_token(9, STAMP, secret=SECRET, expires=timedelta(minutes=5))
    assert security.read_access_token(token, secret=SECRET) == (9, STAMP)
    with pytest.raises(security.InvalidToken):  # the same text under a rotated key is not trusted
        security.read_access_token(token, secret="another-secret-of-at-least-32-bytes")


@pytest.mark.parametrize("exp", ["soon", None])
def test_a_token_with_a_bad_expiry_is_invalid(exp: object) -> None:
    claims = {"sub": "1", "stamp": STAMP, "iat": datetime.now(UTC), "exp": exp}
    token = jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, algorithm="HS256")
    with pytest.raises(security.InvalidToken):
        security.read_access_token(token, secret=SECRET)


def test_production_passwords_use_argon2id_above_owasps_minimum() -> None:
    (hasher,) = security.new_password_hasher().hashers
    hashed = hasher.hash("a passphrase")
    assert hashed.startswith("$argon2id$")
    # OWASP Password Storage Cheat Sheet: at least 19 MiB of memory and 2 iterations.
    assert "m=65536,t=3,p=4" in hashed
    assert security.ARGON2_MEMORY_KIB >= 19 * 1024 and security.ARGON2_TIME_COST >= 2
