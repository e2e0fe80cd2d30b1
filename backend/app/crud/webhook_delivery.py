"""The worker's webhook job: claim due deliveries, sign and send them, record each attempt.

A pass claims up to `batch` due deliveries of active endpoints in a short transaction (FOR UPDATE
SKIP LOCKED on PostgreSQL, so several workers never claim the same one) and leases them: the
attempt is counted and the delivery is not due again for LEASE, so a worker killed mid-send
leaves it to be retried (at-least-once, under the same webhook-id). The requests go out outside
any transaction, CONCURRENCY at a time, each to the address checked for its endpoint in this batch
(app.core.addresses),
signed afresh (app.webhooks). A second short transaction records the attempts: delivered, retried
on the schedule (or after Retry-After), dead after the last attempt; a 410 or 5 days of failures
disable the endpoint (and the latter tells its owner by e-mail, through the notification outbox).
"""

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import bindparam, insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app import webhooks
from app.core.addresses import Target, UnsafeUrl, resolve
from app.core.config import get_settings
from app.core.database import Database
from app.crud import common, outbox
from app.models import (
    NotificationKind,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryState,
    WebhookEndpoint,
)

_DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]
_ATTEMPTS = WebhookAttempt.__table__  # type: ignore[attr-defined]
LEASE = timedelta(seconds=webhooks.TIMEOUT_SECONDS * 4)
CONCURRENCY = 16
USER_AGENT = "IncidentDesk-Webhooks/1"
ERROR_MAX = 1000


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    message_id: str
    payload: str
    attempts: int
    endpoint_id: int
    url: str
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Result:
    at: datetime
    status: int | None
    latency_ms: int | None
    error: str | None
    response: str | None
    retry_after: float | None


async def delivery_pass(db: Database, *, batch: int, stop: asyncio.Event | None = None) -> int:
    """Send every due delivery, a batch at a time; returns how many attempts were made."""
    done = 0
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(client: httpx.AsyncClient, item: Claimed, target: Target | str) -> Result:
        async with limit:
            return await send(client, item, target)

    async with httpx.AsyncClient(
        follow_redirects=False, timeout=httpx.Timeout(webhooks.TIMEOUT_SECONDS), trust_env=False
    ) as client:
        while stop is None or not stop.is_set():
            claimed = await claim(db, batch=batch, now=common.utcnow())
            if not claimed:
                break
            # Each endpoint's address, resolved and checked once for the batch (app.core.addresses).
            urls = sorted({item.url for item in claimed})
            targets = dict(zip(urls, await asyncio.gather(*(checked(url) for url in urls)), strict=True))
            results = await asyncio.gather(*(one(client, item, targets[item.url]) for item in claimed))
            await record(db, list(zip(claimed, results, strict=True)))
            done += len(claimed)
            if len(claimed) < batch:
                break
    return done


def _due(now: datetime) -> Any:
    return (
        select(WebhookDelivery.id)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .where(
            col(WebhookDelivery.state) == WebhookDeliveryState.pending,
            col(WebhookDelivery.next_attempt_at) <= now,
            col(WebhookEndpoint.active).is_(True),
        )
        .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id))
    )


async def claim(db: Database, *, batch: int, now: datetime) -> list[Claimed]:
    """Lease up to `batch` due deliveries of active endpoints: a probe (none due: nothing else),
    then three statements in one short transaction (the due ids, locked and skipped by other
    workers; their lease; their endpoints)."""
    if (await (await db.connection()).execute(_due(now).limit(1))).first() is None:
        return []  # an idle pass: one read, no write transaction
    async with db.write() as session:
        due = _due(now).limit(batch).with_for_update(skip_locked=True, of=WebhookDelivery)
        ids = list((await session.exec(due)).all())
        if not ids:
            return []
        leased = (
            await session.exec(
                update(_DELIVERIES)
                .where(_DELIVERIES.c.id.in_(ids))
                .values(attempts=_DELIVERIES.c.attempts + 1, next_attempt_at=now + LEASE)
                .returning(
                    _DELIVERIES.c.id,
                    _DELIVERIES.c.message_id,
                    _DELIVERIES.c.payload,
                    _DELIVERIES.c.attempts,
                    _DELIVERIES.c.endpoint_id,
                )
            )
        ).all()
        endpoint_ids = {row.endpoint_id for row in leased}
        endpoints = {
            e.id: e
            for e in (
                await session.exec(select(WebhookEndpoint).where(col(WebhookEndpoint.id).in_(endpoint_ids)))
            ).all()
        }
    claimed = []
    for row in sorted(leased, key=lambda r: ids.index(r.id)):
        endpoint = endpoints[row.endpoint_id]
        claimed.append(
            Claimed(
                delivery_id=row.id,
                message_id=row.message_id,
                payload=row.payload,
                attempts=row.attempts,
                endpoint_id=row.endpoint_id,
                url=endpoint.url,
                secrets=tuple(
                    webhooks.signing_secrets(
                        endpoint.secret, endpoint.previous_secret, endpoint.previous_secret_expires_at, now
                    )
                ),
            )
        )
    return claimed


def _pinned(url: str, address: str) -> tuple[str, str]:
    """The URL with its host replaced by the checked address, and the Host header to send."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    host_header = parts.hostname or ""
    if ":" in host_header:
        host_header = f"[{host_header}]"
    if parts.port is not None:
        host_header = f"{host_header}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header


async def checked(url: str) -> Target | str:
    """The URL's checked target, or why it may not be called."""
    try:
        return await resolve(url, allow_private=get_settings().WEBHOOKS_ALLOW_PRIVATE_NETWORKS)
    except UnsafeUrl as exc:
        return f"refused: {exc}"[:ERROR_MAX]


async def send(client: httpx.AsyncClient, item: Claimed, target: Target | str) -> Result:
    """One attempt to the checked `target` (or the reason there is none): sign with a fresh
    timestamp, POST, keep the first 4 KiB of the answer. Never raises: a failure is a Result
    with an error."""
    now = common.utcnow()
    if isinstance(target, str):
        return Result(now, None, None, target, None, None)
    url, host = _pinned(item.url, target.address)
    headers = {
        **webhooks.signature_headers(item.message_id, item.payload, secrets_=item.secrets, now=now),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "host": host,
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    started = time.perf_counter()
    try:
        async with asyncio.timeout(webhooks.TIMEOUT_SECONDS):
            async with client.stream(
                "POST", url, content=item.payload.encode(), headers=headers, extensions=extensions
            ) as response:
                kept = bytearray()
                async for chunk in response.aiter_raw():
                    kept.extend(chunk)
                    if len(kept) >= webhooks.RESPONSE_KEPT:
                        break
                latency = int((time.perf_counter() - started) * 1000)
                return Result(
                    now,
                    response.status_code,
                    latency,
                    None,
                    bytes(kept[: webhooks.RESPONSE_KEPT]).decode("utf-8", "replace"),
                    webhooks.retry_after_seconds(response.headers.get("retry-after"))
                    if response.status_code in (429, 503)
                    else None,
                )
    except TimeoutError:
        error = f"no answer within {webhooks.TIMEOUT_SECONDS:.0f} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
    latency = int((time.perf_counter() - started) * 1000)
    return Result(now, None, latency, error[:ERROR_MAX], None, None)


async def record(db: Database, outcomes: list[tuple[Claimed, Result]]) -> None:
    """Write the attempts and their consequences in one transaction: the log rows in one insert,
    the deliveries in one update per kind of outcome, each endpoint once (locked)."""
    now = common.utcnow()
    delivered: list[int] = []
    dead: list[int] = []
    retries: list[dict[str, object]] = []
    verdicts: dict[int, list[tuple[webhooks.Outcome, datetime]]] = {}
    for item, result in outcomes:
        verdict = webhooks.outcome(result.status)
        verdicts.setdefault(item.endpoint_id, []).append((verdict, result.at))
        if verdict == webhooks.Outcome.delivered:
            delivered.append(item.delivery_id)
            continue
        delay = (
            None
            if verdict == webhooks.Outcome.gone
            else webhooks.next_attempt_delay(item.attempts, result.retry_after)
        )
        if delay is None:
            dead.append(item.delivery_id)
        else:
            retries.append({"delivery": item.delivery_id, "due": now + delay})
    async with db.write() as session:
        await session.exec(
            insert(_ATTEMPTS),
            params=[
                {
                    "delivery_id": item.delivery_id,
                    "attempted_at": result.at,
                    "status_code": result.status,
                    "latency_ms": result.latency_ms,
                    "error": result.error,
                    "response": result.response,
                }
                for item, result in outcomes
            ],
        )
        if delivered:
            await session.exec(
                update(_DELIVERIES)
                .where(_DELIVERIES.c.id.in_(delivered))
                .values(state=WebhookDeliveryState.delivered, delivered_at=now)
            )
        if dead:
            await session.exec(
                update(_DELIVERIES).where(_DELIVERIES.c.id.in_(dead)).values(state=WebhookDeliveryState.dead)
            )
        if retries:
            await session.exec(
                update(_DELIVERIES)
                .where(_DELIVERIES.c.id == bindparam("delivery"))
                .values(next_attempt_at=bindparam("due")),
                params=retries,
            )
        for endpoint_id in sorted(verdicts):  # locked in one order by every worker: no deadlock
            endpoint = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
            if endpoint is None:
                continue
            for verdict, at in verdicts[endpoint_id]:
                if verdict == webhooks.Outcome.delivered:
                    endpoint.failing_since = None
                elif verdict == webhooks.Outcome.gone:
                    _disable(session, endpoint, "the receiver answered 410 Gone", notify=False)
                else:
                    endpoint.failing_since = endpoint.failing_since or at
                    if endpoint.active and now - endpoint.failing_since >= webhooks.DISABLE_AFTER:
                        _disable(session, endpoint, "every delivery failed for 5 days", notify=True)
            session.add(endpoint)


def _disable(session: AsyncSession, endpoint: WebhookEndpoint, reason: str, *, notify: bool) -> None:
    if not endpoint.active:
        return
    endpoint.active = False
    endpoint.disabled_reason = reason
    endpoint.updated_at = common.utcnow()
    if notify and endpoint.owner_id is not None:
        about = {"endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason}
        outbox.enqueue(
            session,
            outbox.Queued(
                kind=NotificationKind.webhook_disabled, recipient_id=endpoint.owner_id, payload=about
            ),
        )
