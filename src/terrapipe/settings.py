"""Settings from the environment (``TERRAPIPE_*``) and an optional ``terrapipe.toml``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class Settings(BaseSettings):
    """Where terrapipe keeps its state and which services it talks to.

    Built fresh by :func:`get_settings`; nothing here is a module-level singleton.
    """

    model_config = SettingsConfigDict(
        env_prefix="TERRAPIPE_", toml_file="terrapipe.toml", extra="ignore"
    )

    home: Path = Field(default=Path(".terrapipe"), description="State directory.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite under home."
    )
    redis_url: str | None = None
    workers: int | None = Field(default=None, description="Local engine pool size.")
    run_expiry_days: float = 30.0

    # -- the HTTP service (terrapipe serve) ------------------------------------------------
    broker_url: str | None = Field(
        default=None, description="Celery broker (redis:// or amqp://); jobs go to workers."
    )
    data_roots: str | None = Field(
        default=None,
        description="Folders (path-separated) whose files requests may name; default the "
        "working directory and home.",
    )
    auth: bool = Field(default=False, description="Execution and dismiss need a token.")
    api_max_body: int = Field(default=1 << 20, description="Largest request body, bytes.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def artifacts_dir(self) -> Path:
        return self.home_dir / "artifacts"

    @property
    def stac_dir(self) -> Path:
        return self.home_dir / "stac"

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home_dir / 'terrapipe.db'}"


def get_settings(**overrides: object) -> Settings:
    """Read the settings now (environment and ``terrapipe.toml``), with explicit overrides."""
    return Settings(**overrides)
