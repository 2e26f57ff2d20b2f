"""Configuration: one strictly validated YAML file, secrets from the environment.

`config/floorbridge.example.yaml` documents every key.
"""

from .load import ENV_OVERRIDES, default_settings, load_settings
from .model import (
    DatabaseSettings,
    DiscordSettings,
    FeedSettings,
    LoggingSettings,
    MatrixSettings,
    MeetingSettings,
    ServerSettings,
    Settings,
    TelegramSettings,
    parse_duration,
)
from .summary import describe

__all__ = [
    "ENV_OVERRIDES",
    "DatabaseSettings",
    "DiscordSettings",
    "FeedSettings",
    "LoggingSettings",
    "MatrixSettings",
    "MeetingSettings",
    "ServerSettings",
    "Settings",
    "TelegramSettings",
    "default_settings",
    "describe",
    "load_settings",
    "parse_duration",
]
