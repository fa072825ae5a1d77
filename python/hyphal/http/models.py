"""The JSON bodies routes take: pydantic models whose fields are the control methods' params.

Unknown keys are refused (``extra="forbid"``) as the control API refuses
unknown params, and types are strict (``"true"`` is not a boolean), so what
the OpenAPI document says is what the node accepts.
"""

from __future__ import annotations

from typing import Any

from hyphal.http.framework import pydantic


class Body(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    def params(self) -> dict[str, Any]:
        """The fields that were given, as the control method's params."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class GroupCreate(Body):
    name: str = pydantic.Field(description="The group's name.")
    member_name: str | None = pydantic.Field(None, description="This device's name in the group.")


class GroupJoin(Body):
    uri: str = pydantic.Field(description="An invite URI (hyphal://group/...).")
    member_name: str | None = pydantic.Field(None, description="This device's name in the group.")


class GroupBackup(Body):
    address: str = pydantic.Field(description="host:port of a backup server that authorises this device.")


class FeedCreate(Body):
    encrypted: bool = pydantic.Field(False, description="A private feed: its share carries the read secret.")
    name: str | None = pydantic.Field(None, description="Its name on this node (default: a random one).")


class RecordPut(Body):
    value_hex: str = pydantic.Field(description="At most 1000 bytes, in hex.")
    mutable: bool = pydantic.Field(False, description="Signed by this node, under its key and the salt.")
    salt: str | None = pydantic.Field(
        None, description="A mutable record's salt (at most 64 bytes of UTF-8)."
    )
    cas: int | None = pydantic.Field(None, ge=0, description="Compare-and-swap: the seq expected now.")


class ValueSet(Body):
    name: str = pydantic.Field(description="The value's name (its salt).")
    value_hex: str = pydantic.Field(description="At most 1000 bytes, in hex.")
    cas: int | None = pydantic.Field(None, ge=0, description="Compare-and-swap: the seq expected now.")


class SecretPut(Body):
    url: str = pydantic.Field(description="The service URL the secret is for (its name).")
    value: str = pydantic.Field(description="The secret, in base64.")


class SecretReader(Body):
    url: str = pydantic.Field(description="The secret's URL.")
    reader: str = pydantic.Field(description="The reader's public key, 64 hex digits.")


__all__ = [
    "Body",
    "FeedCreate",
    "GroupBackup",
    "GroupCreate",
    "GroupJoin",
    "RecordPut",
    "SecretPut",
    "SecretReader",
    "ValueSet",
]
