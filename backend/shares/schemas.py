"""What clients send and receive about share links."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

DEFAULT_SHARE_SECONDS = 7 * 24 * 3600
MAX_SHARE_SECONDS = 30 * 24 * 3600
"""A link is a bearer credential for someone's media: it must end, and not too late."""


class ShareCreate(BaseModel):
    expires_in_seconds: int = Field(
        default=DEFAULT_SHARE_SECONDS, ge=60, le=MAX_SHARE_SECONDS, description="From 1 minute to 30 days."
    )


class SharePublic(BaseModel):
    id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    active: bool = Field(description="Neither expired nor revoked.")


class ShareCreated(SharePublic):
    token: str = Field(description="Shown only here; whoever has it may read the job until it ends.")
    url: str = Field(description="The web app's page for the link: send this to the colleague.")
    api_url: str = Field(description="The shared job in the API (GET), for scripts.")


class ShareList(BaseModel):
    items: list[SharePublic]
