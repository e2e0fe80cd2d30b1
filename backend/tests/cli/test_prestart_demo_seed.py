"""prestart.sh with SEED_DEMO_DATA=1 (what scripts/dev.sh sets): demo data on first start.

Later starts leave the data alone: `db seed --if-empty` (tests/cli/test_seed_command.py) and
`create-superuser --from-settings` (tests/test_container_commands.py) are tested on their own.
"""

import os
import subprocess
import sys
from pathlib import Path

from app.core import migrations
from app.core.config import BACKEND_DIR
from tests.cli.conftest import count, revision
from tests.databases import scratch_database

BIN = Path(sys.executable).parent


def prestart(url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
    env.update(
        DATABASE_URL=url,
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        SEED_DEMO_DATA="1",
        SEED_DEMO_TICKETS="25",
        SEED_DEMO_USERS="10",
    )
    return subprocess.run(
        ["bash", "scripts/prestart.sh"], cwd=BACKEND_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def test_first_start_seeds_demo_data_then_creates_the_admin() -> None:
    with scratch_database() as url:
        first = prestart(url)
        assert first.returncode == 0, first.stderr
        assert "inserting 25 tickets" in first.stdout
        assert "demo.admin@example.com" in first.stdout
        assert "created admin admin@example.com" in first.stdout
        assert revision(url) == migrations.head_revision()
        assert (count(url, "tickets"), count(url, "users")) == (25, 11)  # 10 seeded + the first admin
