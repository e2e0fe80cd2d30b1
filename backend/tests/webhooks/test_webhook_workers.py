"""Several workers on one PostgreSQL database: every delivery is sent exactly once (no crash), each
worker claiming its own rows with FOR UPDATE SKIP LOCKED."""

import asyncio
from collections import Counter

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import insert
from sqlalchemy.pool import NullPool

from app.core import migrations
from app.core.database import Database, create_async_db_engine
from app.core.db import create_db_engine
from app.crud import common, webhook_delivery
from app.models import WebhookDelivery, WebhookEndpoint
from tests import databases
from tests.webhooks.conftest import url_of

DELIVERIES = 600
WORKERS = 3


@pytest.mark.skipif(
    not databases.is_postgres(databases.test_database_url()), reason="SKIP LOCKED claims: PostgreSQL only"
)
def test_three_workers_send_each_delivery_exactly_once(receiver: HTTPServer) -> None:
    receiver.expect_request("/hook").respond_with_data("ok")
    with databases.scratch_database() as url:
        migrations.upgrade(url)
        engine = create_db_engine(url)
        now = common.utcnow()
        with engine.begin() as conn:
            endpoint_id = conn.execute(
                insert(WebhookEndpoint.__table__)
                .values(  # type: ignore[attr-defined]
                    url=url_of(receiver),
                    secret="whsec_" + "QUJD" * 8,
                    event_types=[],
                    filter={},
                    active=True,
                    created_at=now,
                    updated_at=now,
                )
                .returning(WebhookEndpoint.__table__.c.id)  # type: ignore[attr-defined]
            ).scalar_one()
            conn.execute(
                insert(WebhookDelivery.__table__),  # type: ignore[attr-defined]
                [
                    {
                        "endpoint_id": endpoint_id,
                        "message_id": f"msg_{n}",
                        "event_type": "webhook.test",
                        "payload": "{}",
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for n in range(DELIVERIES)
                ],
            )
        engine.dispose()

        async def workers() -> list[int]:
            engines = [create_async_db_engine(url, poolclass=NullPool) for _ in range(WORKERS)]
            databases = [Database(e) for e in engines]
            try:
                return list(
                    await asyncio.gather(*(webhook_delivery.delivery_pass(db, batch=25) for db in databases))
                )
            finally:
                for db, e in zip(databases, engines, strict=True):
                    await db.close()
                    await e.dispose()

        done = asyncio.run(workers())
    ids = Counter(request.headers["Webhook-Id"] for request, _ in receiver.log)
    assert len(ids) == DELIVERIES and set(ids.values()) == {1}
    assert sum(done) == DELIVERIES
    assert all(count > 0 for count in done), done  # the work was shared
