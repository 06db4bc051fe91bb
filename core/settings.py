"""The one configuration object, shared by the API and the worker.

Every field is an UPPER_CASE environment variable (or a line in `.env`), documented in
`.env.example`. The embedded default needs no server: SQLite, files under `var/` and kombu's
SQLAlchemy transport as the Celery broker. Setting `DATABASE_URL` and `REDIS_URL` switches to the
distributed setup (PostgreSQL + Redis) without other changes.
"""

from __future__ import annotations

import math
from collections import Counter
from enum import StrEnum
from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ml.config import DEFAULT_AGGREGATION, PipelineConfig
from ml.contracts import DEFAULT_CHECKPOINT, Aggregation, MediaLimits

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET_KEY = "development-only-secret-change-me"
MIN_SECRET_BITS = 128
"""Production refuses a SECRET_KEY whose estimated entropy is below this (32 x 'a' passed the length rule)."""


def estimated_entropy_bits(secret: str) -> float:
    """Length times the Shannon entropy of the secret's own character frequencies: an upper bound on
    what it holds, cheap and good enough to catch few-symbol keys (32 x 'a' is 0 bits;
    `secrets.token_urlsafe(32)` about 200, `token_hex(32)` about 240). Frequencies ignore order, so
    a key that repeats a shorter unit ("abcd" x 16) counts as that unit alone."""
    period = (secret + secret).find(secret, 1)
    unit = secret[:period] if 0 < period < len(secret) else secret
    counts = Counter(unit)
    return -sum(count * math.log2(count / len(unit)) for count in counts.values())


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class LogFormat(StrEnum):
    json = "json"
    text = "text"


class ReaperMode(StrEnum):
    """Who runs the stale-job reaper: a loop inside the API process, Celery beat, or nobody."""

    embedded = "embedded"
    beat = "beat"
    off = "off"


class AuthMode(StrEnum):
    """off: no accounts, job tokens only; optional: job tokens plus accounts; required: accounts only."""

    off = "off"
    optional = "optional"
    required = "required"


class Tier(StrEnum):
    free = "free"
    pro = "pro"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    ENVIRONMENT: Environment = Environment.development
    SECRET_KEY: str = DEFAULT_SECRET_KEY
    REPORT_SIGNING_KEY: str = ""
    """Base64 of a 32-byte Ed25519 seed that signs report.json; empty: derived from SECRET_KEY (backend/reports)."""
    LOG_LEVEL: str = "INFO"

    VAR_DIR: Path = REPO_ROOT / "var"
    DATABASE_URL: str = ""
    """Empty means SQLite at VAR_DIR/deepscreen.db."""
    DATABASE_CONNECT_TIMEOUT_SECONDS: int = Field(default=10, ge=1)
    """How long opening a PostgreSQL connection may take before the request fails (503)."""
    REDIS_URL: str = ""
    """Empty means the embedded broker (kombu's SQLAlchemy transport on a SQLite file)."""
    CELERY_BROKER_URL: str = ""
    """Overrides the broker derived from REDIS_URL / VAR_DIR; rarely needed."""
    STORAGE_DIR: Path | None = None
    """Uploads and artifacts; empty means VAR_DIR/storage."""
    FRONTEND_DIST: Path = REPO_ROOT / "frontend" / "dist"
    """Served at / when it exists (the embedded default); nginx serves it in a team deployment."""
    CORS_ORIGINS: list[str] = Field(default_factory=list)

    HEADER_TIMEOUT_SECONDS: float = Field(default=10.0, gt=0)
    """A request's headers must arrive within this (backend/server.py; nginx has its own in front)."""
    BODY_TIMEOUT_SECONDS: float = Field(default=30.0, gt=0)
    """A request body may pause this long between bytes before the connection is closed."""
    MAX_UPLOAD_BYTES: int = 200 * 1024 * 1024
    UPLOAD_CHUNK_BYTES: int = 1024 * 1024
    MAX_FILENAME_LENGTH: int = 200
    MAX_VIDEO_SECONDS: float = 600.0
    MAX_FRAME_PIXELS: int = 3840 * 2160
    MAX_IMAGE_PIXELS: int = 50_000_000
    MAX_IMAGE_SIDE: int = 16_384
    MIN_MEDIA_SIDE: int = Field(default=PipelineConfig.model_fields["min_face_px"].default, ge=1)
    """Images and video frames whose shorter side is below this are refused (422 dimensions_too_small):
    no face the pipeline keeps (its `min_face_px`) fits in them; they used to end as `internal`."""

    MODEL_CHECKPOINT: Path = DEFAULT_CHECKPOINT
    DEVICE: str = "auto"
    """'auto' picks CUDA when available, else CPU; or any torch device string."""
    WORKER_QUEUES: str = "images,videos"
    WORKER_CONCURRENCY: int = 1
    PIPELINE_FRAMES: int = 32
    """Frames sampled evenly over a video."""
    PIPELINE_BACKEND: str = "auto"
    """'auto' (ONNX Runtime on CPU, torch elsewhere), 'torch' or 'onnx'."""
    PIPELINE_AGGREGATION: Aggregation = DEFAULT_AGGREGATION
    PIPELINE_EXPLAIN_TOP_K: int = 3
    PIPELINE_EXPLAIN_BUDGET_SECONDS: float = 10.0
    """Grad-CAM stops once a job has run this long (counted from the pipeline's start); 0 skips it."""
    TORCH_THREADS: int = 0
    """Intra-op threads per worker process; 0 leaves torch's default (all cores)."""

    JOB_SOFT_TIME_LIMIT_SECONDS: int = 600
    JOB_TIME_LIMIT_SECONDS: int = 660
    JOB_MAX_ATTEMPTS: int = 3
    """Runs of one job (first run + re-runs after a worker died) before it fails."""
    TASK_MAX_RETRIES: int = 3
    """Retries after transient errors (database or broker briefly unreachable)."""
    TASK_RETRY_BACKOFF_SECONDS: int = 2
    HEARTBEAT_SECONDS: float = 5.0
    STALE_AFTER_SECONDS: float = 60.0
    """A running job whose heartbeat is older than this is considered orphaned."""
    QUEUED_RESEND_AFTER_SECONDS: float = 900.0
    """A queued job untouched this long has its message sent again (lost message)."""
    REAPER_MODE: ReaperMode = ReaperMode.embedded
    """Also decides who runs the retention sweep (the same embedded loop, or Celery beat)."""
    REAPER_INTERVAL_SECONDS: float = 15.0

    # --- operations (docs/operations.md) ---
    LOG_FORMAT: LogFormat = LogFormat.json
    METRICS_ALLOWED_NETWORKS: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])
    """Networks (JSON list of CIDRs) whose clients may read /api/metrics without a token."""
    METRICS_TOKEN: str = ""
    """When set, `Authorization: Bearer <token>` also opens /api/metrics, from any address."""
    PROMETHEUS_MULTIPROC_DIR: Path | None = None
    """Host-local folder where every DeepScreen process on this host writes its samples; empty means
    VAR_DIR/metrics. Same variable as prometheus_client's own, so API processes started with it set
    write there too (uvicorn --workers)."""
    WORKER_METRICS_PORT: int = 0
    """`python -m worker` serves this host's samples on this port at /metrics (0: off)."""
    READY_REQUIRES_WORKER: bool = True
    """/api/health/ready fails while no worker process has sent a heartbeat within STALE_AFTER_SECONDS."""
    DELETE_UPLOADS_AFTER_PROCESSING: bool = True
    """Privacy: an upload is deleted as soon as its job is finished (the result and artifacts stay)."""
    JOB_TTL_HOURS: float = 168.0
    """Finished jobs older than this are deleted with their result, artifacts and row (0: keep forever)."""
    RETENTION_INTERVAL_SECONDS: float = 300.0
    STORAGE_QUOTA_BYTES: int = 0
    """Uploads are refused with 507 once STORAGE_DIR holds this much (0: no quota, only the free-disk floor)."""
    MIN_FREE_DISK_BYTES: int = 1024 * 1024 * 1024
    """Uploads are refused with 507 when accepting one would leave less free disk than this."""

    # Accounts and access control (backend/accounts, docs/security.md).
    AUTH_MODE: AuthMode = AuthMode.off
    ACCESS_TOKEN_TTL_SECONDS: int = 1800
    """Lifetime of one signed access token; cookie sessions are renewed while in use."""
    SESSION_TTL_SECONDS: int = 7 * 24 * 3600
    """A server-side session ends this long after sign-in, however active."""
    COOKIE_SECURE: bool = False
    """Send the session cookie over HTTPS only; set true behind TLS (refused off in production with accounts)."""
    COOKIE_SAMESITE: Literal["lax", "strict", "none"] = "lax"
    PASSWORD_MIN_LENGTH: int = 10
    PASSWORD_HASH_TIME_COST: int = 2
    PASSWORD_HASH_MEMORY_KIB: int = 19_456
    """Argon2id cost (OWASP's minimum by default); lower only in tests."""
    ANONYMOUS_TIER: Tier | None = None
    """Limits for callers without an account; empty: pro when AUTH_MODE=off (a private install), else free."""
    FREE_DAILY_UPLOADS: int = 20
    FREE_MAX_UPLOAD_BYTES: int = 50 * 1024 * 1024
    FREE_MAX_VIDEO_SECONDS: float = 120.0
    PRO_DAILY_UPLOADS: int = 1000
    """Pro uploads per UTC day; pro size and duration limits are MAX_UPLOAD_BYTES and MAX_VIDEO_SECONDS."""
    LOGIN_RATE_LIMIT: int = 10
    """Login attempts per LOGIN_RATE_WINDOW_SECONDS, per client address and per account."""
    LOGIN_RATE_WINDOW_SECONDS: int = 900
    REQUEST_RATE_LIMIT: int = 600
    """API requests per minute per user (or per client address without one); 0 disables."""
    UPLOAD_RATE_LIMIT: int = 20
    """Uploads per minute per user (or per client address); 0 disables."""
    TRUSTED_PROXIES: list[str] = Field(default_factory=list)
    """Addresses or networks (JSON list) whose X-Forwarded-For is believed, e.g. ["10.0.0.0/8"]."""

    @field_validator("METRICS_ALLOWED_NETWORKS")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ip_network(network, strict=False)  # a typo fails at start, naming the entry
        return value

    @field_validator("SECRET_KEY", mode="before")
    @classmethod
    def _empty_secret_is_the_default(cls, value: object) -> object:
        # .env.example leaves it empty: the default (refused outside development) rather than "".
        return DEFAULT_SECRET_KEY if value == "" else value

    @field_validator("STORAGE_DIR", "ANONYMOUS_TIER", "PROMETHEUS_MULTIPROC_DIR", mode="before")
    @classmethod
    def _empty_means_default(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Self:
        if self.ENVIRONMENT is not Environment.development and (
            self.SECRET_KEY == DEFAULT_SECRET_KEY or len(self.SECRET_KEY.encode()) < 32
        ):
            raise ValueError("SECRET_KEY must be a random value of at least 32 bytes outside development.")
        production = self.ENVIRONMENT is Environment.production
        if production and estimated_entropy_bits(self.SECRET_KEY) < MIN_SECRET_BITS:
            raise ValueError(
                f"SECRET_KEY is too predictable for production (under {MIN_SECRET_BITS} bits estimated): use "
                "`python -c \"import secrets; print(secrets.token_urlsafe(48))\"`."
            )
        if production and self.AUTH_MODE is not AuthMode.off and not self.COOKIE_SECURE:
            raise ValueError(
                "COOKIE_SECURE=false is refused in production with accounts on: the session cookie would travel "
                "over plain HTTP. Terminate TLS (nginx or a load balancer) and set COOKIE_SECURE=true."
            )
        if self.COOKIE_SAMESITE == "none" and not self.COOKIE_SECURE:
            raise ValueError("COOKIE_SAMESITE=none requires COOKIE_SECURE=true (browsers drop the cookie otherwise).")
        if production and self.PASSWORD_HASH_MEMORY_KIB < 19_456:
            raise ValueError("PASSWORD_HASH_MEMORY_KIB below 19456 (the OWASP Argon2id minimum) is refused in prod.")
        if self.JOB_TIME_LIMIT_SECONDS <= self.JOB_SOFT_TIME_LIMIT_SECONDS:
            raise ValueError("JOB_TIME_LIMIT_SECONDS must be larger than JOB_SOFT_TIME_LIMIT_SECONDS.")
        if self.STALE_AFTER_SECONDS <= 2 * self.HEARTBEAT_SECONDS:
            raise ValueError("STALE_AFTER_SECONDS must exceed two heartbeats, or live jobs would be reaped.")
        return self

    @property
    def database_url(self) -> str:
        return self.DATABASE_URL or f"sqlite:///{self.VAR_DIR / 'deepscreen.db'}"

    @property
    def broker_url(self) -> str:
        if self.CELERY_BROKER_URL:
            return self.CELERY_BROKER_URL
        if self.REDIS_URL:
            return self.REDIS_URL
        return f"sqla+sqlite:///{self.VAR_DIR / 'broker.db'}"

    @property
    def metrics_dir(self) -> Path:
        return self.PROMETHEUS_MULTIPROC_DIR or self.VAR_DIR / "metrics"

    @property
    def storage_dir(self) -> Path:
        return self.STORAGE_DIR or self.VAR_DIR / "storage"

    @property
    def anonymous_tier(self) -> Tier:
        if self.ANONYMOUS_TIER is not None:
            return self.ANONYMOUS_TIER
        return Tier.pro if self.AUTH_MODE is AuthMode.off else Tier.free

    @property
    def media_limits(self) -> MediaLimits:
        return MediaLimits(
            max_video_seconds=self.MAX_VIDEO_SECONDS,
            max_frame_pixels=self.MAX_FRAME_PIXELS,
            max_image_pixels=self.MAX_IMAGE_PIXELS,
            max_image_side=self.MAX_IMAGE_SIDE,
        )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once; tests build their own `Settings` instead."""
    return Settings()
