"""Settings: value grammars, env/.env/``*_FILE`` assembly, the settings model, `check-config`.

Built once in ``main()`` (and again on SIGHUP), never at import time.
"""

from service.settings.describe import describe
from service.settings.load import load_settings
from service.settings.model import (
    ApiSettings,
    CollectionSettings,
    LedgerSettings,
    LogSettings,
    Settings,
)

__all__ = [
    "ApiSettings",
    "CollectionSettings",
    "LedgerSettings",
    "LogSettings",
    "Settings",
    "describe",
    "load_settings",
]
