import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.config import BACKEND_DIR, ConfigError, Settings, get_settings, normalise_database_url


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+psycopg://u:p@db:5432/app"),
        ("postgresql://u:p@db/app", "postgresql+psycopg://u:p@db/app"),
        (
            "postgresql+psycopg://u@127.0.0.1/app",
            "postgresql+psycopg://u@127.0.0.1/app",
        ),
        ("sqlite:////tmp/x.sqlite3", "sqlite:////tmp/x.sqlite3"),
    ],
)
def test_database_urls_are_normalised_to_psycopg(raw: str, expected: str) -> None:
    assert normalise_database_url(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not a url", "not a database URL"),
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("postgresql:///app", "needs a host"),
        ("postgresql://u@host", "needs a database name"),
    ],
)
def test_malformed_database_url_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, raw: str, message: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", raw)
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError) as info:
            get_settings()
    finally:
        get_settings.cache_clear()
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("invalid configuration: DATABASE_URL: ")
    assert message in text


def test_placeholder_secret_refused_outside_local() -> None:
    for environment in ("staging", "production"):
        with pytest.raises(ValueError, match=f'SECRET_KEY is "changethis".*ENVIRONMENT={environment}'):
            Settings(
                ENVIRONMENT=environment,
                SECRET_KEY="changethis",
                FIRST_SUPERUSER_PASSWORD="an admin passphrase",
            )


def test_the_placeholder_secret_becomes_a_kept_random_one_in_local(
    caplog: pytest.LogCaptureFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / ".data"
    with caplog.at_level(logging.WARNING, logger="app.config"):
        first = Settings(ENVIRONMENT="local", SECRET_KEY="changethis", DATA_DIR=data)
        again = Settings(ENVIRONMENT="local", SECRET_KEY="changethis", DATA_DIR=data)  # another process
    assert caplog.records == []  # loading settings says nothing; the server says it once at startup
    assert first.SECRET_KEY == again.SECRET_KEY != "changethis"
    assert len(first.SECRET_KEY) >= 32
    assert (tmp_path / ".data" / "dev-secret-key").read_text() == first.SECRET_KEY
    assert first.development_warnings() == [
        'FIRST_SUPERUSER_PASSWORD still "changethis" (development only; set real values in .env or '
        "the environment before deploying)"
    ]
    short = Settings(
        ENVIRONMENT="local", SECRET_KEY="dev", FIRST_SUPERUSER_PASSWORD="an admin passphrase", DATA_DIR=data
    )
    assert short.development_warnings() == ["SECRET_KEY is shorter than 32 bytes: tokens are weakly signed"]


def test_a_dev_start_says_each_warning_once_in_one_line(tmp_path: Path) -> None:
    """A local server start: one line per development warning, no PyJWT warnings with source lines."""
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "TEST_DATABASE_URL")}
    env.update(ENVIRONMENT="local", SECRET_KEY="changethis", FIRST_SUPERUSER_PASSWORD="changethis")
    env["DATA_DIR"] = str(tmp_path / ".data")
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/dev.sqlite3"
    script = (
        "from fastapi.testclient import TestClient\n"
        "from app.main import app\n"
        "from app.core import security\n"
        "with TestClient(app) as client:\n"
        "    client.get('/health')\n"
        "security.create_access_token(1, '0' * 32, secret='short', expires=__import__('datetime').timedelta(1))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=BACKEND_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert output.count("changethis") == 1, output
    assert "InsecureKeyLengthWarning" not in output and "warnings.warn" not in output
    assert output.count("database schema at base (empty), head") == 1, output


def test_production_with_real_secrets_starts() -> None:
    settings = Settings(
        ENVIRONMENT="production", SECRET_KEY="s" * 32, FIRST_SUPERUSER_PASSWORD="an admin passphrase"
    )
    assert settings.ENVIRONMENT == "production"
    with pytest.raises(ValueError, match="at least 32 characters"):
        Settings(
            ENVIRONMENT="staging", SECRET_KEY="short-secret", FIRST_SUPERUSER_PASSWORD="an admin passphrase"
        )
    assert settings.ENVIRONMENT == "production"


def test_a_guessable_first_admin_password_is_refused_outside_local() -> None:
    for weak in ("p" * 12, "password1", "admin@example.com"):
        with pytest.raises(ValueError, match="FIRST_SUPERUSER_PASSWORD is too easy to guess"):
            Settings(ENVIRONMENT="production", SECRET_KEY="s" * 32, FIRST_SUPERUSER_PASSWORD=weak)
    # In local, the development placeholder is allowed (with the warning above).
    assert Settings(ENVIRONMENT="local", FIRST_SUPERUSER_PASSWORD="changethis").ENVIRONMENT == "local"


def test_forwarded_allow_ips_takes_addresses_and_networks_only() -> None:
    settings = Settings(FORWARDED_ALLOW_IPS="127.0.0.1, 10.0.0.0/8,::1")
    assert settings.FORWARDED_ALLOW_IPS == ["127.0.0.1", "10.0.0.0/8", "::1"]
    assert Settings().FORWARDED_ALLOW_IPS == []  # nobody is trusted by default
    with pytest.raises(ValueError, match=r"'proxy\.local' is not an IP address or network"):
        Settings(FORWARDED_ALLOW_IPS="proxy.local")


def test_postgres_values_build_the_url_when_no_database_url() -> None:
    settings = Settings(
        DATABASE_URL="",
        POSTGRES_SERVER="db",
        POSTGRES_USER="app",
        POSTGRES_PASSWORD="pw",
        POSTGRES_DB="desk",
        SECRET_KEY="s" * 32,
    )
    assert settings.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://app:pw@db:5432/desk"


def test_the_default_sqlite_file_is_outside_the_watched_backend_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATA_DIR", raising=False)
    settings = Settings(DATABASE_URL="", POSTGRES_SERVER="", SECRET_KEY="s" * 32)
    assert settings.SQLALCHEMY_DATABASE_URI.startswith("sqlite:///")
    path = Path(settings.SQLALCHEMY_DATABASE_URI.removeprefix("sqlite:///"))
    assert path == BACKEND_DIR.parent / ".data" / "incident_desk.sqlite3"
    assert Settings(DATA_DIR="/srv/desk", DATABASE_URL="", SECRET_KEY="s" * 32).SQLALCHEMY_DATABASE_URI == (
        "sqlite:////srv/desk/incident_desk.sqlite3"
    )
    assert not path.is_relative_to(BACKEND_DIR)  # writes there never wake the reloader


def test_cors_origins_from_a_comma_list() -> None:
    settings = Settings(
        BACKEND_CORS_ORIGINS="http://localhost:3000, https://desk.example.com/",
        FRONTEND_HOST="http://localhost:5173",
        SECRET_KEY="s" * 32,
    )
    assert settings.all_cors_origins == [
        "http://localhost:3000",
        "https://desk.example.com",
        "http://localhost:5173",
    ]
