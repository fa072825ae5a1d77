"""Routes on the node itself: status, peers and the DHT; DHT records, signed values and secrets."""

from __future__ import annotations

from typing import Annotated

from hyphal.control.encoding import Json
from hyphal.http import models
from hyphal.http.framework import fastapi, responses
from hyphal.http.methods import Context, call, params_of
from hyphal.http.streams import MethodEvents

Salt = Annotated[str | None, fastapi.Query(description="The salt (a value's name); none: the empty salt.")]
Key = Annotated[str, fastapi.Path(description="32 bytes in hex: a writer's public key or a record's hash.")]


def router(ctx: Context) -> fastapi.APIRouter:
    api = fastapi.APIRouter()
    node = ctx.node

    @api.get("/status", tags=["node"], summary="This node: key, addresses, groups")
    async def status() -> Json:
        result: Json = await call(node, "status")
        return result

    @api.get("/peers", tags=["node"], summary="Open connections and their channels")
    async def peers() -> list[Json]:
        result: list[Json] = await call(node, "peers")
        return result

    @api.get("/dht", tags=["dht"], summary="The DHT: routing table size, buckets, records held")
    async def dht_status() -> Json:
        result: Json = await call(node, "dht.status")
        return result

    @api.get("/dht/peers", tags=["dht"], summary="The routing table's contacts")
    async def dht_peers() -> list[Json]:
        result: list[Json] = await call(node, "dht.peers")
        return result

    @api.get("/dht/lookup/{key}", tags=["dht"], summary="The nodes closest to a key, and its announces")
    async def dht_lookup(key: Key) -> Json:
        result: Json = await call(node, "dht.lookup", {"key": key})
        return result

    @api.post("/records", tags=["dht"], summary="Put an immutable or a mutable (signed) DHT record")
    async def record_put(body: models.RecordPut) -> Json:
        result: Json = await call(node, "record.put", body.params())
        return result

    @api.get("/records/{key}", tags=["dht"], summary="Get a DHT record by hash, or by key and salt")
    async def record_get(key: Key, salt: Salt = None) -> Json:
        result: Json = await call(node, "record.get", params_of(key=key, salt=salt))
        return result

    @api.post("/values", tags=["values"], summary="Set one of this node's signed values")
    async def value_set(body: models.ValueSet) -> Json:
        result: Json = await call(node, "value.set", body.params())
        return result

    @api.get("/values/{key}", tags=["values"], summary="The newest version of a signed value")
    async def value_get(key: Key, salt: Salt = None) -> Json:
        result: Json = await call(node, "value.get", params_of(key=key, salt=salt))
        return result

    @api.get(
        "/values/{key}/watch",
        tags=["values"],
        summary="Server-Sent Events: the current version, then each newer one",
        response_class=responses.Response,
        responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
    )
    async def value_watch(key: Key, salt: Salt = None) -> responses.Response:
        return MethodEvents(node, "value.watch", params_of(key=key, salt=salt), ctx.stopping)

    @api.get("/secrets", tags=["secrets"], summary="Secrets this node owns (or, held=true, holds for others)")
    async def secret_list(held: bool = False) -> list[Json]:
        result: list[Json] = await call(node, "secret.ls", {"held": held})
        return result

    @api.put("/secrets", tags=["secrets"], summary="Store a secret under a URL, as this node")
    async def secret_put(body: models.SecretPut) -> Json:
        result: Json = await call(node, "secret.put", body.params())
        return result

    @api.get("/secrets/value", tags=["secrets"], summary="Read a secret (this node's, or one shared with it)")
    async def secret_get(
        url: Annotated[str, fastapi.Query(description="The secret's URL.")],
        owner: Annotated[
            str | None, fastapi.Query(description="Its owner's public key (default: this node).")
        ] = None,
    ) -> Json:
        result: Json = await call(node, "secret.get", params_of(url=url, owner=owner))
        return result

    @api.delete("/secrets", tags=["secrets"], summary="Delete one of this node's secrets")
    async def secret_delete(url: Annotated[str, fastapi.Query(description="The secret's URL.")]) -> Json:
        result: Json = await call(node, "secret.rm", {"url": url})
        return result

    @api.post("/secrets/grant", tags=["secrets"], summary="Let another node's key read a secret")
    async def secret_grant(body: models.SecretReader) -> Json:
        result: Json = await call(node, "secret.grant", body.params())
        return result

    @api.post("/secrets/revoke", tags=["secrets"], summary="Stop another node's key reading a secret")
    async def secret_revoke(body: models.SecretReader) -> Json:
        result: Json = await call(node, "secret.revoke", body.params())
        return result

    return api


__all__ = ["router"]
