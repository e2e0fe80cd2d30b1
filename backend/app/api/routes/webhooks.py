from typing import Annotated

from fastapi import Depends, Query, Response, status

from app import crud
from app.api.deps import DbDep, Page, PageDep, PathId, WebhookAdmin, paging
from app.api.openapi import answers
from app.api.routing import api_router
from app.models import (
    WebhookAttempt,
    WebhookAttemptPublic,
    WebhookDeliveriesPublic,
    WebhookDelivery,
    WebhookDeliveryDetail,
    WebhookDeliveryPublic,
    WebhookDeliveryState,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointPublic,
    WebhookEndpointsPublic,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
    WebhookQueued,
    WebhookReplay,
)

router = api_router("/webhooks", "webhooks")


def _public(endpoint: WebhookEndpoint) -> WebhookEndpointPublic:
    return WebhookEndpointPublic.model_validate(endpoint)


def _delivery(delivery: WebhookDelivery, last: WebhookAttempt | None) -> WebhookDeliveryPublic:
    return WebhookDeliveryPublic.model_validate(
        delivery, update={"last_attempt": None if last is None else WebhookAttemptPublic.model_validate(last)}
    )


@router.post(
    "/",
    response_model=WebhookEndpointWithSecret,
    status_code=status.HTTP_201_CREATED,
    responses=answers(403, 422),
)
async def create_webhook(
    db: DbDep, user: WebhookAdmin, endpoint_in: WebhookEndpointCreate
) -> WebhookEndpoint:
    """Register a receiver. The answer carries its signing secret (`whsec_...`), shown here and on
    rotation only."""
    return await crud.create_endpoint(db=db, endpoint_in=endpoint_in, owner=user)


@router.get("/", response_model=WebhookEndpointsPublic, responses=answers(403, 422))
async def list_webhooks(db: DbDep, _: WebhookAdmin, page: PageDep) -> WebhookEndpointsPublic:
    endpoints, count = await crud.list_endpoints(db=db, offset=page.offset, limit=page.limit)
    return WebhookEndpointsPublic(data=[_public(e) for e in endpoints], count=count)


@router.get("/{endpoint_id:id}", response_model=WebhookEndpointPublic, responses=answers(403, 404, 422))
async def read_webhook(db: DbDep, _: WebhookAdmin, endpoint_id: PathId) -> WebhookEndpointPublic:
    return _public(await crud.get_endpoint(db=db, endpoint_id=endpoint_id))


@router.patch("/{endpoint_id:id}", response_model=WebhookEndpointPublic, responses=answers(403, 404, 422))
async def update_webhook(
    db: DbDep, _: WebhookAdmin, endpoint_id: PathId, endpoint_in: WebhookEndpointUpdate
) -> WebhookEndpointPublic:
    """Change an endpoint; `{"active": true}` switches a disabled one on again."""
    return _public(await crud.update_endpoint(db=db, endpoint_id=endpoint_id, endpoint_in=endpoint_in))


@router.delete(
    "/{endpoint_id:id}", status_code=status.HTTP_204_NO_CONTENT, responses=answers(403, 404, 422, status=204)
)
async def delete_webhook(db: DbDep, _: WebhookAdmin, endpoint_id: PathId) -> Response:
    await crud.delete_endpoint(db=db, endpoint_id=endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{endpoint_id:id}/rotate-secret",
    response_model=WebhookEndpointWithSecret,
    responses=answers(403, 404, 422),
)
async def rotate_webhook_secret(db: DbDep, _: WebhookAdmin, endpoint_id: PathId) -> WebhookEndpoint:
    """A new secret; for 24 hours every delivery is signed with both the new and the old one."""
    return await crud.rotate_secret(db=db, endpoint_id=endpoint_id)


@router.post(
    "/{endpoint_id:id}/test",
    response_model=WebhookDeliveryPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses=answers(403, 404, 422, status=202),
)
async def test_webhook(db: DbDep, _: WebhookAdmin, endpoint_id: PathId) -> WebhookDeliveryPublic:
    """Queue a `webhook.test` event for this endpoint (whatever its event types)."""
    return _delivery(await crud.send_test_event(db=db, endpoint_id=endpoint_id), None)


@router.get(
    "/{endpoint_id:id}/deliveries", response_model=WebhookDeliveriesPublic, responses=answers(403, 404, 422)
)
async def list_webhook_deliveries(
    db: DbDep,
    _: WebhookAdmin,
    endpoint_id: PathId,
    page: Annotated[Page, Depends(paging("state"))],
    state: Annotated[WebhookDeliveryState | None, Query()] = None,
) -> WebhookDeliveriesPublic:
    """The endpoint's delivery log, newest first, each with its last attempt."""
    rows, count = await crud.list_deliveries(
        db=db, endpoint_id=endpoint_id, state=state, offset=page.offset, limit=page.limit
    )
    return WebhookDeliveriesPublic(data=[_delivery(d, last) for d, last in rows], count=count)


@router.get(
    "/{endpoint_id:id}/deliveries/{delivery_id:id}",
    response_model=WebhookDeliveryDetail,
    responses=answers(403, 404, 422),
)
async def read_webhook_delivery(
    db: DbDep, _: WebhookAdmin, endpoint_id: PathId, delivery_id: PathId
) -> WebhookDeliveryDetail:
    """One delivery: its payload and every attempt (status, latency, error, first 4 KiB)."""
    delivery, attempts = await crud.get_delivery(db=db, endpoint_id=endpoint_id, delivery_id=delivery_id)
    log = [WebhookAttemptPublic.model_validate(a) for a in attempts]
    return WebhookDeliveryDetail.model_validate(
        delivery,
        update={
            "payload": crud.delivery_payload(delivery),
            "log": log,
            "last_attempt": log[-1] if log else None,
        },
    )


@router.post(
    "/{endpoint_id:id}/deliveries/{delivery_id:id}/redeliver",
    response_model=WebhookDeliveryPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses=answers(403, 404, 422, status=202),
)
async def redeliver_webhook(
    db: DbDep, _: WebhookAdmin, endpoint_id: PathId, delivery_id: PathId
) -> WebhookDeliveryPublic:
    """Send this delivery again (same webhook-id), from the start of the retry schedule."""
    return _delivery(await crud.redeliver(db=db, endpoint_id=endpoint_id, delivery_id=delivery_id), None)


@router.post(
    "/{endpoint_id:id}/replay",
    response_model=WebhookQueued,
    status_code=status.HTTP_202_ACCEPTED,
    responses=answers(403, 404, 422, status=202),
)
async def replay_webhooks(
    db: DbDep, _: WebhookAdmin, endpoint_id: PathId, replay: WebhookReplay
) -> WebhookQueued:
    """Queue again the endpoint's deliveries since a time (the failed ones, or all that finished)."""
    queued = await crud.replay(
        db=db, endpoint_id=endpoint_id, since=replay.since, only_failed=replay.only_failed
    )
    return WebhookQueued(queued=queued)
