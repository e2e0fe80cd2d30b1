"""What tests/ops report at the end of a run: the fuzzing totals (operations x examples per role)."""

from collections import Counter, defaultdict
from typing import Any

import pytest

# role -> operation label -> requests sent; role -> status -> responses (filled by test_fuzz.py)
FUZZ_REQUESTS: dict[str, Counter[str]] = defaultdict(Counter)
FUZZ_STATUSES: dict[str, Counter[int]] = defaultdict(Counter)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FUZZ_REQUESTS:
        return
    terminalreporter.section("fuzzing (schemathesis)")
    for role, requests in sorted(FUZZ_REQUESTS.items()):
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(FUZZ_STATUSES[role].items()))
        terminalreporter.write_line(
            f"{role:<9} {len(requests)} operations, {sum(requests.values())} requests "
            f"({min(requests.values())}-{max(requests.values())} per operation); statuses {statuses}"
        )


@pytest.fixture
def fuzz_counters() -> tuple[dict[str, Counter[str]], dict[str, Counter[int]]]:
    return FUZZ_REQUESTS, FUZZ_STATUSES
