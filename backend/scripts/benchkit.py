"""Helpers shared by the benchmark and drill scripts (and the tests that run the server command)."""

import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.core.config import BACKEND_DIR, normalise_database_url

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dockerfile_instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; comments dropped, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def dockerfile_cmd(dockerfile: Path) -> list[str]:
    """The CMD of the image `dockerfile` builds (its last CMD, in exec form)."""
    cmd = [arguments for keyword, arguments in dockerfile_instructions(dockerfile) if keyword == "CMD"][-1]
    command: list[str] = json.loads(cmd)
    return command


def dockerfile_command(port: int, dockerfile: str = "Dockerfile") -> list[str]:
    """The CMD of backend/<dockerfile>, on 127.0.0.1:port with this virtualenv's executables."""
    command = dockerfile_cmd(BACKEND_DIR / dockerfile)
    command[0] = str(BIN / command[0])
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    return command


@contextmanager
def scratch_postgres(server_url: str, prefix: str) -> Iterator[str]:
    """A new database on the server at `server_url`, dropped afterwards."""
    url = make_url(normalise_database_url(server_url))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def wait_until_healthy(
    base: str, process: "subprocess.Popen[bytes] | subprocess.Popen[str]", seconds: float = 30
) -> bool:
    """Poll `base`/health until it answers (True), the process exits or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(f"{base}/health", timeout=1)
            return True
        except httpx.TransportError:
            time.sleep(0.1)
    return False
