"""Webhook endpoints (admins): register, change, remove, rotate the secret, send a test event; the
delivery log, redelivery and replay. Deliveries are written here or by a ticket write
(app.crud.webhook_outbox) and sent by the worker (app.crud.webhook_delivery)."""

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import webhooks
from app.core.addresses import UnsafeUrl, resolve
from app.core.config import get_settings
from app.core.database import Database
from app.core.errors import Invalid, NotFound
from app.crud import common
from app.crud.common import page
from app.models import (
    User,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryState,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
)

ENDPOINT_NOT_FOUND = "Webhook endpoint not found"
DELIVERY_NOT_FOUND = "Delivery not found"


async def _checked_url(url: str) -> str:
    try:
        await resolve(url, allow_private=get_settings().WEBHOOKS_ALLOW_PRIVATE_NETWORKS)
    except UnsafeUrl as exc:
        raise Invalid("url", str(exc)) from None
    return url


def _checked_types(types: Sequence[str]) -> list[str]:
    """Without repeats, in EVENT_TYPES' order (the schema already refused unknown types)."""
    return sorted(set(types), key=webhooks.EVENT_TYPES.index)


async def create_endpoint(
    *, db: Database, endpoint_in: WebhookEndpointCreate, owner: User
) -> WebhookEndpoint:
    url = await _checked_url(endpoint_in.url)
    now = common.utcnow()
    endpoint = WebhookEndpoint(
        url=url,
        description=endpoint_in.description,
        event_types=_checked_types(endpoint_in.event_types),
        filter=endpoint_in.filter.model_dump(exclude_none=True, mode="json"),
        active=endpoint_in.active,
        secret=webhooks.new_secret(),
        owner_id=owner.id,
        created_at=now,
        updated_at=now,
    )
    async with db.write() as session:
        session.add(endpoint)
    return endpoint


async def list_endpoints(*, db: Database, offset: int, limit: int) -> tuple[list[WebhookEndpoint], int]:
    stmt = select(WebhookEndpoint).order_by(col(WebhookEndpoint.id))
    return await page(await db.reader(), stmt, offset=offset, limit=limit)


async def get_endpoint(*, db: Database, endpoint_id: int) -> WebhookEndpoint:
    endpoint = await (await db.reader()).get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(ENDPOINT_NOT_FOUND)
    return endpoint


async def update_endpoint(
    *, db: Database, endpoint_id: int, endpoint_in: WebhookEndpointUpdate
) -> WebhookEndpoint:
    data = endpoint_in.model_dump(exclude_unset=True)
    if "url" in data:
        data["url"] = await _checked_url(data["url"])
    if "event_types" in data:
        data["event_types"] = _checked_types(data["event_types"])
    if "filter" in data:
        data["filter"] = (
            endpoint_in.filter.model_dump(exclude_none=True, mode="json") if endpoint_in.filter else {}
        )
    async with db.write() as session:
        endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
        if endpoint is None:
            raise NotFound(ENDPOINT_NOT_FOUND)
        if data.get("active") and not endpoint.active:  # switched on again: a fresh start
            data |= {"disabled_reason": None, "failing_since": None}
        endpoint.sqlmodel_update(data | {"updated_at": common.utcnow()})
        session.add(endpoint)
    return endpoint


async def delete_endpoint(*, db: Database, endpoint_id: int) -> None:
    async with db.write() as session:
        endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
        if endpoint is None:
            raise NotFound(ENDPOINT_NOT_FOUND)
        await session.delete(endpoint)  # its deliveries and their log go with it


async def rotate_secret(*, db: Database, endpoint_id: int) -> WebhookEndpoint:
    """A new secret; the old one still signs (beside the new) for the next 24 hours."""
    async with db.write() as session:
        endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
        if endpoint is None:
            raise NotFound(ENDPOINT_NOT_FOUND)
        now = common.utcnow()
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = now + webhooks.SECRET_OVERLAP
        endpoint.secret = webhooks.new_secret()
        endpoint.updated_at = now
        session.add(endpoint)
    return endpoint


async def send_test_event(*, db: Database, endpoint_id: int) -> WebhookDelivery:
    now = common.utcnow()
    message = webhooks.new_message_id()
    payload = webhooks.body(
        message,
        webhooks.TEST_EVENT,
        occurred_at=now,
        sequence=0,
        data={"endpoint_id": endpoint_id},
        changes={},
    )
    async with db.write() as session:
        if await session.get(WebhookEndpoint, endpoint_id) is None:
            raise NotFound(ENDPOINT_NOT_FOUND)
        delivery = WebhookDelivery(
            endpoint_id=endpoint_id,
            message_id=message,
            event_type=webhooks.TEST_EVENT,
            payload=payload,
            next_attempt_at=now,
            created_at=now,
        )
        session.add(delivery)
    return delivery


async def list_deliveries(
    *, db: Database, endpoint_id: int, state: WebhookDeliveryState | None, offset: int, limit: int
) -> tuple[list[tuple[WebhookDelivery, WebhookAttempt | None]], int]:
    """An endpoint's deliveries, newest first, each with its last attempt."""
    session = await db.reader()
    if await session.get(WebhookEndpoint, endpoint_id) is None:
        raise NotFound(ENDPOINT_NOT_FOUND)
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if state is not None:
        stmt = stmt.where(WebhookDelivery.state == state)
    rows, count = await page(
        session, stmt.order_by(col(WebhookDelivery.id).desc()), offset=offset, limit=limit
    )
    last = await _last_attempts(session, [row.id for row in rows if row.id is not None])
    return [(row, last.get(row.id or 0)) for row in rows], count


async def _last_attempts(session: AsyncSession, ids: list[int]) -> dict[int, WebhookAttempt]:
    if not ids:
        return {}
    latest = (
        select(WebhookAttempt.delivery_id, func.max(WebhookAttempt.id).label("id"))
        .where(col(WebhookAttempt.delivery_id).in_(ids))
        .group_by(col(WebhookAttempt.delivery_id))
        .subquery()
    )
    stmt = select(WebhookAttempt).join(latest, col(WebhookAttempt.id) == latest.c.id)
    return {a.delivery_id: a for a in (await session.exec(stmt)).all()}


async def get_delivery(
    *, db: Database, endpoint_id: int, delivery_id: int
) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
    session = await db.reader()
    delivery = await session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint_id:
        raise NotFound(DELIVERY_NOT_FOUND)
    stmt = (
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(col(WebhookAttempt.id))
    )
    return delivery, list((await session.exec(stmt)).all())


async def redeliver(*, db: Database, endpoint_id: int, delivery_id: int) -> WebhookDelivery:
    """The delivery again, from the first attempt of the schedule (same webhook-id)."""
    async with db.write() as session:
        delivery = await session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if delivery is None or delivery.endpoint_id != endpoint_id:
            raise NotFound(DELIVERY_NOT_FOUND)
        delivery.state = WebhookDeliveryState.pending
        delivery.attempts = 0
        delivery.next_attempt_at = common.utcnow()
        delivery.delivered_at = None
        session.add(delivery)
    return delivery


async def replay(*, db: Database, endpoint_id: int, since: datetime, only_failed: bool) -> int:
    """Queue again the endpoint's deliveries made since `since` (only the dead ones by default)."""
    async with db.write() as session:
        if await session.get(WebhookEndpoint, endpoint_id) is None:
            raise NotFound(ENDPOINT_NOT_FOUND)
        stmt = (
            update(WebhookDelivery)
            .where(col(WebhookDelivery.endpoint_id) == endpoint_id, col(WebhookDelivery.created_at) >= since)
            .values(
                state=WebhookDeliveryState.pending,
                attempts=0,
                next_attempt_at=common.utcnow(),
                delivered_at=None,
            )
        )
        if only_failed:
            stmt = stmt.where(col(WebhookDelivery.state) == WebhookDeliveryState.dead)
        else:
            stmt = stmt.where(col(WebhookDelivery.state) != WebhookDeliveryState.pending)
        result = await session.exec(stmt)
    return int(result.rowcount)


def delivery_payload(delivery: WebhookDelivery) -> dict[str, object]:
    return dict(json.loads(delivery.payload))
