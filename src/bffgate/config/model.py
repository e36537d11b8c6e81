"""The settings model: frozen dataclasses whose field metadata says how each value is read."""

from __future__ import annotations

import enum
import functools
import typing
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from bffgate.proxy.routes import DEFAULT_METHODS

# Each enumerated setting's values are written once, here; the loader reads them back with
# typing.get_args (messages, validation), so the type and the check cannot drift apart.
TokenMode = Literal["user", "user_optional", "client", "user_or_client", "exchange", "none"]
ClientAuth = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
HttpParser = Literal["auto", "h11", "httptools"]
UpstreamClientChoice = Literal["auto", "httptools", "aiohttp"]
SessionStore = Literal["redis", "memory"]
SameSite = Literal["strict", "lax"]
LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["json", "console"]
AuditFormat = Literal["json", "ocsf"]


class Secret:
    """A string that never shows itself in repr/str (logs, tracebacks)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class Kind(enum.Enum):
    """How a setting is written in TOML or the environment (values.coerce reads this)."""

    TEXT = "text"                # a string, as written
    ENUM = "enum"                # one of the field's Literal values
    FLAG = "flag"                # true/false; from the environment also 1/0, yes/no, on/off
    COUNT = "count"              # an integer
    SIZE = "size"                # bytes, or a number with a unit: "10MiB", "1GB"
    DURATION = "duration"        # whole seconds, or "30s", "30m", "8h", "1d"; never "500ms"
    SECONDS = "seconds"          # seconds, fractions allowed (2.5, "500ms"): network timeouts
    LIST = "list"                # strings: a TOML array, or a JSON/comma/space list
    TABLE = "table"              # a TOML table, or a JSON object
    SECRET = "secret"            # a Secret: as written, env:NAME or file:/path
    SECRET_LIST = "secret_list"  # Secrets (key rotation); one env:/file: may hold them all
    COUNT_OR_AUTO = "count_or_auto"  # an integer, or "auto" (server.workers: one per core)


KIND = "bffgate.config.kind"  # the field-metadata key


def kind(k: Kind) -> Mapping[str, Kind]:
    """The field metadata of a setting of kind ``k``."""
    return MappingProxyType({KIND: k})


# Field metadata, one per kind: ``field(default=..., metadata=DURATION)``.
TEXT, ENUM, FLAG, COUNT = kind(Kind.TEXT), kind(Kind.ENUM), kind(Kind.FLAG), kind(Kind.COUNT)
SIZE, DURATION, SECONDS = kind(Kind.SIZE), kind(Kind.DURATION), kind(Kind.SECONDS)
LIST, TABLE = kind(Kind.LIST), kind(Kind.TABLE)
SECRET, SECRET_LIST = kind(Kind.SECRET), kind(Kind.SECRET_LIST)
COUNT_OR_AUTO = kind(Kind.COUNT_OR_AUTO)


@dataclass(frozen=True)
class ServerSettings:
    public_url: str = field(default="", metadata=TEXT)
    listen: str = field(default="127.0.0.1:8080", metadata=TEXT)
    admin_listen: str = field(default="127.0.0.1:9090", metadata=TEXT)
    admin_token: Secret = field(default=Secret(""), metadata=SECRET)
    trusted_proxies: tuple[str, ...] = field(default=(), metadata=LIST)
    max_body_size: int = field(default=10 * 1024 * 1024, metadata=SIZE)
    # auto: httptools when installed (the image, the speed extra), else h11. Either way the
    # same framing policy applies (bffgate.framing, bffgate.http_protocol).
    http_parser: HttpParser = field(default="auto", metadata=ENUM)
    # auto: the gateway's HTTP/1.1 client on httptools when installed (bffgate.proxy.h1client,
    # ~4x less CPU per call), else aiohttp's; the same forwarding rules either way.
    upstream_client: UpstreamClientChoice = field(default="auto", metadata=ENUM)
    # Worker processes sharing the listeners (bffgate.workers); "auto": one per core.
    workers: int | Literal["auto"] = field(default=1, metadata=COUNT_OR_AUTO)


@dataclass(frozen=True)
class OidcSettings:
    issuer: str = field(default="", metadata=TEXT)
    client_id: str = field(default="", metadata=TEXT)
    client_secret: Secret = field(default=Secret(""), metadata=SECRET)
    client_auth: ClientAuth = field(default="client_secret_basic", metadata=ENUM)
    private_key: Secret = field(default=Secret(""), metadata=SECRET)
    scopes: tuple[str, ...] = field(
        default=("openid", "profile", "email", "offline_access"), metadata=LIST)
    redirect_path: str = field(default="/bff/callback", metadata=TEXT)
    post_logout_redirect: str = field(default="/", metadata=TEXT)
    use_par: bool = field(default=False, metadata=FLAG)
    extra_auth_params: Mapping[str, str] = field(default_factory=dict, metadata=TABLE)
    id_token_algs: tuple[str, ...] = field(
        default=("RS256", "PS256", "ES256", "EdDSA"), metadata=LIST)
    clock_skew: int = field(default=60, metadata=DURATION)
    http_timeout: float = field(default=10.0, metadata=SECONDS)
    metadata_ttl: int = field(default=3600, metadata=DURATION)
    # DPoP (RFC 9449): bind the session's tokens to a per-session key pair; upstream calls
    # on user routes carry a proof (README "DPoP").
    dpop: bool = field(default=False, metadata=FLAG)


@dataclass(frozen=True)
class SessionSettings:
    store: SessionStore = field(default="redis", metadata=ENUM)
    idle_timeout: int = field(default=30 * 60, metadata=DURATION)
    absolute_timeout: int = field(default=8 * 3600, metadata=DURATION)
    refresh_ahead: int = field(default=60, metadata=DURATION)
    login_timeout: int = field(default=600, metadata=DURATION)
    # per-process near-cache of recently read sessions (session/near_cache.py)
    near_cache: bool = field(default=True, metadata=FLAG)
    # a new login beyond this many sessions of one sub ends its oldest (0: unlimited)
    max_per_user: int = field(default=0, metadata=COUNT)


@dataclass(frozen=True)
class CookieSettings:
    name: str = field(default="__Host-bffgate", metadata=TEXT)
    same_site: SameSite = field(default="strict", metadata=ENUM)
    secure: bool = field(default=True, metadata=FLAG)
    secret_keys: tuple[Secret, ...] = field(default=(), metadata=SECRET_LIST)
    # accepted, never used to sign (key rotation)
    verify_keys: tuple[Secret, ...] = field(default=(), metadata=SECRET_LIST)


@dataclass(frozen=True)
class RedisSettings:
    url: Secret = field(default=Secret("redis://127.0.0.1:6379/0"), metadata=SECRET)
    sentinel: Mapping[str, Any] = field(default_factory=dict, metadata=TABLE)
    cluster: bool = field(default=False, metadata=FLAG)
    key_prefix: str = field(default="bffgate:", metadata=TEXT)
    wait_replicas: int = field(default=0, metadata=COUNT)
    max_connections: int = field(default=256, metadata=COUNT)
    timeout: float = field(default=2.0, metadata=SECONDS)


@dataclass(frozen=True)
class RouteSettings:
    prefix: str = field(metadata=TEXT)
    upstream: str = field(metadata=TEXT)
    token: TokenMode = field(metadata=ENUM)
    strip_prefix: bool = field(default=False, metadata=FLAG)
    # The shorthand: response_timeout and idle_timeout unless given; caps connect_timeout's
    # default (5 s). Unset (None) fields are filled in by proxy.timeouts.Timeouts.of.
    timeout: float = field(default=30.0, metadata=SECONDS)
    connect_timeout: float | None = field(default=None, metadata=SECONDS)
    response_timeout: float | None = field(default=None, metadata=SECONDS)
    idle_timeout: float | None = field(default=None, metadata=SECONDS)  # 0: no idle limit
    websocket: bool = field(default=False, metadata=FLAG)
    methods: tuple[str, ...] = field(default=DEFAULT_METHODS, metadata=LIST)
    allow_matrix_params: bool = field(default=False, metadata=FLAG)
    # What the route's token is asked for (token = client | user_or_client | exchange):
    # OAuth scopes, an audience (the `audience` parameter some IdPs take) and an RFC 8707
    # resource indicator.
    scope: tuple[str, ...] = field(default=(), metadata=LIST)
    audience: str = field(default="", metadata=TEXT)
    resource: str = field(default="", metadata=TEXT)
    # false: this route's API takes no DPoP (only possible while oidc.dpop is off)
    dpop: bool = field(default=True, metadata=FLAG)


@dataclass(frozen=True)
class LogSettings:
    level: LogLevel = field(default="info", metadata=ENUM)
    format: LogFormat = field(default="json", metadata=ENUM)
    # ocsf: login/logout/session audit events as OCSF Authentication records (audit_ocsf.py)
    audit_format: AuditFormat = field(default="json", metadata=ENUM)
    # lines held up to this long (or 64 KiB) and written together; 0: each line at once
    flush_interval: float = field(default=0.1, metadata=SECONDS)


@dataclass(frozen=True)
class TelemetrySettings:
    # OpenTelemetry tracing (the otel extra, README "Tracing (OpenTelemetry)"); where the
    # spans go is set by the standard OTEL_* environment variables.
    tracing: bool = field(default=False, metadata=FLAG)


@dataclass(frozen=True)
class Settings:
    server: ServerSettings
    oidc: OidcSettings
    session: SessionSettings
    cookie: CookieSettings
    redis: RedisSettings
    routes: tuple[RouteSettings, ...]
    log: LogSettings
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)

    @functools.cached_property  # read on every proxied request (CSRF, X-Forwarded-*)
    def public_origin(self) -> str:
        parts = urlsplit(self.server.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def redirect_uri(self) -> str:
        return self.public_origin + self.oidc.redirect_path

    @property
    def login_cookie_name(self) -> str:
        return self.cookie.name + "-login"


# The [section] tables, in the order messages list them ([[routes]] is an array, read apart).
SECTIONS: dict[str, type] = {
    "server": ServerSettings,
    "oidc": OidcSettings,
    "session": SessionSettings,
    "cookie": CookieSettings,
    "redis": RedisSettings,
    "log": LogSettings,
    "telemetry": TelemetrySettings,
}


@dataclass(frozen=True)
class Spec:
    """What the loader needs to read one field: its kind, and an enum's allowed values."""

    name: str
    kind: Kind
    choices: tuple[str, ...] = ()


@functools.cache
def specs(cls: type) -> Mapping[str, Spec]:
    """Each field of a settings class by name; a field without a kind is a programming error
    caught at the first load (and by the model's tests), never read by guessing."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Spec] = {}
    for f in fields(cls):
        k = _kind_of(f)
        choices = typing.get_args(hints[f.name]) if k is Kind.ENUM else ()
        if k is Kind.ENUM and not choices:
            raise TypeError(f"{cls.__name__}.{f.name}: an enum setting needs a Literal type")
        out[f.name] = Spec(f.name, k, tuple(str(c) for c in choices))
    return out


def _kind_of(f: Field[Any]) -> Kind:
    k = f.metadata.get(KIND)
    if not isinstance(k, Kind):
        raise TypeError(f"setting {f.name!r} has no kind in its field metadata")
    return k
