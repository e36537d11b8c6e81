"""Configuration: TOML + environment overrides, parsed once into frozen typed settings.

Sources, lowest to highest precedence: built-in defaults, the TOML file, environment
variables ``BFFGATE_<SECTION>__<KEY>`` (e.g. ``BFFGATE_OIDC__CLIENT_SECRET``). Routes come
from the file's ``[[routes]]`` array, or from ``BFFGATE_ROUTES`` holding a JSON array.
Any string value of a secret key may be ``env:NAME`` (read that variable) or ``file:/path``
(read that file, trailing newline stripped).

``load_settings`` collects *every* problem before failing and raises one ``ConfigError``
whose messages each name the key (``oidc.issuer: required``), so ``bffgate check-config``
can list them all at once. No ``assert`` is used for validation.

Modules: ``model`` (the settings dataclasses; each field's metadata names its kind),
``values`` (reading one value by its kind), ``rules`` (cross-field checks, one function per
section), ``loader`` (file + environment + secrets -> Settings), ``errors`` (ConfigError).
"""

from bffgate.config.errors import ConfigError
from bffgate.config.loader import (
    DEFAULT_CONFIG_PATH,
    ENV_PREFIX,
    EXAMPLE_CONFIG_PATH,
    ConfigFileMissing,
    env_override_name,
    load_settings,
)
from bffgate.config.model import (
    CookieSettings,
    LogSettings,
    OidcSettings,
    RedisSettings,
    RouteSettings,
    Secret,
    ServerSettings,
    SessionSettings,
    Settings,
)

__all__ = ["DEFAULT_CONFIG_PATH", "ENV_PREFIX", "EXAMPLE_CONFIG_PATH", "ConfigError",
           "ConfigFileMissing", "CookieSettings", "LogSettings", "OidcSettings",
           "RedisSettings", "RouteSettings", "Secret", "ServerSettings", "SessionSettings",
           "Settings", "env_override_name", "load_settings"]
