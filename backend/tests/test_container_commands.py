"""The commands the containers run (prestart.sh, the server), run here on the host."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from app.core import migrations
from app.core.config import BACKEND_DIR
from scripts.benchkit import free_port, wait_until_healthy
from tests.databases import scratch_database

BIN = Path(sys.executable).parent


def env_for(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        DATABASE_URL=database_url,
        **extra,
    )
    return env


def run_script(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", f"scripts/{script}"],
        cwd=BACKEND_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_prestart_migrates_an_empty_database() -> None:
    with scratch_database() as url:
        result = run_script("prestart.sh", env_for(url))
        assert result.returncode == 0, result.stderr
        assert f"schema at {migrations.head_revision()}" in result.stdout
        assert "created admin admin@example.com" in result.stdout
        again = run_script("prestart.sh", env_for(url))  # idempotent
        assert again.returncode == 0, again.stderr
        assert "first superuser admin@example.com already exists" in again.stdout


def test_prestart_with_malformed_url_is_one_line() -> None:
    result = run_script("prestart.sh", env_for("postgres://"))
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        "error: invalid configuration: DATABASE_URL: a PostgreSQL URL needs a host"
    ]
    assert "Traceback" not in result.stderr


def test_prestart_with_unreachable_database_gives_up() -> None:
    result = run_script("prestart.sh", env_for("postgresql://x@127.0.0.1:9/db", DB_WAIT_SECONDS="1"))
    assert result.returncode == 3
    assert len(error_lines(result.stderr)) == 1
    assert "Traceback" not in result.stderr


def test_server_command_serves_the_api() -> None:
    with scratch_database() as url:
        migrations.upgrade(url)
        port = free_port()
        server = subprocess.Popen(
            [
                str(BIN / "fastapi"),
                "run",
                "app/main.py",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=BACKEND_DIR,
            env=env_for(url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert wait_until_healthy(f"http://127.0.0.1:{port}", server), "the server did not start"
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
            assert health.json() == {"status": "ok"}
            db_health = httpx.get(f"http://127.0.0.1:{port}/db-health", timeout=5)
            assert db_health.status_code == 200
            assert db_health.json()["up_to_date"] is True
        finally:
            server.terminate()
            server.wait(timeout=15)


def test_server_refuses_placeholder_secret_in_production() -> None:
    env = env_for("sqlite://", ENVIRONMENT="production", SECRET_KEY="changethis")
    result = subprocess.run(
        [str(BIN / "fastapi"), "run", "app/main.py", "--port", str(free_port())],
        cwd=BACKEND_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        'incident-desk: invalid configuration: SECRET_KEY is "changethis"; set a real value in .env '
        "or the environment (ENVIRONMENT=production)"
    ]


def test_worker_command_runs_a_pass_and_stops_on_sigterm() -> None:
    """docker-compose.yml's worker service: `worker` (loop) on the migrated database."""
    with scratch_database() as url:
        migrations.upgrade(url)
        once = subprocess.run(
            [str(BIN / "worker"), "--once"],
            cwd=BACKEND_DIR,
            env=env_for(url),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert once.returncode == 0, once.stderr
        worker = subprocess.Popen(
            [str(BIN / "worker"), "--interval", "0.2"],
            cwd=BACKEND_DIR,
            env=env_for(url, LOG_LEVEL="INFO"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert worker.stderr is not None
            assert "worker started" in worker.stderr.readline()
            worker.send_signal(signal.SIGTERM)
            _, stderr = worker.communicate(timeout=15)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        assert worker.returncode == 0, stderr
        assert "worker stopped" in stderr and "Traceback" not in stderr
