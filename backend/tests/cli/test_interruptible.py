"""SIGTERM and SIGINT unwind the `db` command even when Python drops the first KeyboardInterrupt."""

import os
import signal
import sys
from typing import Any

import pytest

from app.cli import interruptible


def test_an_interrupt_dropped_inside_a_finalizer_is_raised_again_at_the_next_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dropped: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", dropped.append)

    class Finalized:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler runs in here: its exception is dropped
            for _ in range(1000):
                pass

    previous = signal.getsignal(signal.SIGTERM)
    with interruptible() as check:
        Finalized()
        assert [type(d.exc_value) for d in dropped] == [KeyboardInterrupt]  # Python printed and went on
        with pytest.raises(KeyboardInterrupt):
            check()
    assert signal.getsignal(signal.SIGTERM) is previous


def test_without_a_signal_check_does_nothing() -> None:
    with interruptible() as check:
        check()
