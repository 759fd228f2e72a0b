"""Settings of the annotation frontend, read from the environment in one place.

Each setting's variable is ``LABELTRAIL_ANNOTATE_<NAME>``. Kafka settings come from
:class:`labeltrail.config.Settings` as everywhere else.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["AnnotateSettings"]


class AnnotateSettings(BaseSettings):
    """The frontend's own settings (frozen)."""

    model_config = SettingsConfigDict(
        env_prefix="LABELTRAIL_ANNOTATE_", frozen=True, extra="ignore"
    )

    host: str = "127.0.0.1"
    """``LABELTRAIL_ANNOTATE_HOST``: the address to listen on."""

    port: int = Field(8080, ge=0, le=65535)
    """``LABELTRAIL_ANNOTATE_PORT``: the port to listen on (0 picks a free one)."""

    tokens_file: str | None = None
    """``LABELTRAIL_ANNOTATE_TOKENS_FILE``: lines ``annotator_id sha256:<hex>``."""

    tokens: str = ""
    """``LABELTRAIL_ANNOTATE_TOKENS``: the same entries inline, separated by commas."""

    submit_rate: float = Field(2.0, gt=0)
    """``LABELTRAIL_ANNOTATE_SUBMIT_RATE``: sustained submissions per second per annotator."""

    submit_burst: int = Field(10, ge=1)
    """``LABELTRAIL_ANNOTATE_SUBMIT_BURST``: submissions an annotator may make at once."""

    signin_rate: float = Field(0.2, gt=0)
    """``LABELTRAIL_ANNOTATE_SIGNIN_RATE``: sign-in attempts per second per client address."""

    signin_burst: int = Field(10, ge=1)
    """``LABELTRAIL_ANNOTATE_SIGNIN_BURST``: sign-in attempts a client may make at once."""

    auth_fail_rate: float = Field(0.1, gt=0)
    """``LABELTRAIL_ANNOTATE_AUTH_FAIL_RATE``: failed credentials (bearer, session cookie or
    sign-in) forgiven per second, per client address and per credential."""

    auth_fail_burst: int = Field(10, ge=1)
    """``LABELTRAIL_ANNOTATE_AUTH_FAIL_BURST``: failures allowed before a 429."""

    session_max_age: float = Field(12 * 3600.0, gt=0)
    """``LABELTRAIL_ANNOTATE_SESSION_MAX_AGE``: seconds a sign-in session lasts (12 h)."""

    session_idle: float = Field(3600.0, gt=0)
    """``LABELTRAIL_ANNOTATE_SESSION_IDLE``: seconds without a request that end a session."""

    token_max_age: float = Field(90 * 86400.0, gt=0)
    """``LABELTRAIL_ANNOTATE_TOKEN_MAX_AGE``: seconds a token lasts after its issue time (90 d)."""

    secure_cookie: bool = False
    """``LABELTRAIL_ANNOTATE_SECURE_COOKIE``: mark the session cookie Secure (behind TLS)."""

    shutdown_timeout: float = Field(30.0, gt=0)
    """``LABELTRAIL_ANNOTATE_SHUTDOWN_TIMEOUT``: seconds in-flight requests get on SIGTERM."""

    ready_timeout: float = Field(120.0, gt=0)
    """``LABELTRAIL_ANNOTATE_READY_TIMEOUT``: seconds to wait for the task log to be read."""
