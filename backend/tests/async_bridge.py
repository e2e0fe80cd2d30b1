"""Tests are synchronous; the app's database access is async. This bridges the two.

Each test process has an event loop in a thread (an anyio blocking portal) that owns its database
connection; each test runs in an outer transaction on it, rolled back when the test ends. The app
(through the TestClient, which runs its requests in that same loop) and the test code share it:

- the app's request database is a ConnectionDatabase on it (every write a SAVEPOINT);
- the test's `session` is a plain SQLAlchemy Session on its sync facade; GreenletSession runs each
  of its calls inside the loop, in a greenlet, as SQLAlchemy's async layer requires. Reads go past
  the identity map (populate_existing), so the test sees what the app's own sessions wrote.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from anyio.from_thread import BlockingPortal
from sqlalchemy.sql import Executable
from sqlalchemy.util import greenlet_spawn
from sqlmodel import Session

from app.core import database
from app.core.database import Database

# Session methods that only stage changes or read attributes: no I/O, no greenlet needed.
_LOCAL = frozenset({"add", "add_all", "expunge", "expunge_all", "in_transaction", "is_modified"})
_READS = frozenset({"exec", "execute", "scalar", "scalars"})


class GreenletSession:
    def __init__(self, portal: BlockingPortal, session: Session) -> None:
        self._portal = portal
        self._session = session

    def _run(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self._portal.call(lambda: greenlet_spawn(method, *args, **kwargs))

    def get(self, entity: Any, ident: Any, **kwargs: Any) -> Any:
        return self._run(self._session.get, entity, ident, populate_existing=True, **kwargs)

    @contextmanager
    def begin_nested(self) -> Iterator[None]:
        """A SAVEPOINT around the block, rolled back if it raises (e.g. to try a statement that must
        fail without ending the test's transaction)."""
        savepoint = self._run(self._session.begin_nested)
        try:
            yield
        except BaseException:
            self._run(savepoint.rollback)
            raise
        self._run(savepoint.commit)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._session, name)
        if not callable(attribute) or name in _LOCAL:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if name in _READS and args and isinstance(args[0], Executable):
                args = (args[0].execution_options(populate_existing=True), *args[1:])
            return self._run(attribute, *args, **kwargs)

        return call


def run_on_own_engine(work: Callable[[Database], Awaitable[Any]], url: str, **options: Any) -> Any:
    """`work` on a Database of an engine of its own (disposed of afterwards), in an event loop of its
    own: for unit tests of the database layer that need no test transaction."""

    async def main() -> Any:
        engine = database.create_async_db_engine(url, **options)
        db = Database(engine)
        try:
            return await work(db)
        finally:
            await db.close()
            await engine.dispose()

    return asyncio.run(main())
