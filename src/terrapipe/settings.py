"""Settings from the environment (``TERRAPIPE_*``) and an optional ``terrapipe.toml``."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ByteSize, Field, PrivateAttr
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
    broker_url: str | None = Field(
        default=None, description="Celery broker (redis:// or amqp://) of the celery engine."
    )
    default_queue: str = Field(
        default="terrapipe", description="Celery queue of nodes that name none."
    )
    node_lease_s: float = Field(
        default=60.0, gt=0, description="Celery engine: a running node's lease, renewed."
    )
    broker_visibility_s: float = Field(
        default=600.0,
        gt=0,
        description="Celery engine, Redis broker: an unacknowledged message comes back after "
        "this long (a duplicate is harmless: the database says the node is taken or final).",
    )
    sweep_interval_s: float = Field(
        default=10.0, gt=0, description="Celery engine: how often workers look for lost nodes."
    )
    workers: int | None = Field(default=None, description="Local engine pool size.")
    run_expiry_days: float = 30.0
    admin_levels: str | None = Field(
        default=None,
        description="Admin path level columns, top first (e.g. 'continent,name'); "
        "default state,district,block.",
    )

    # unarchive limits (terrapipe.transfer.archives): bytes written, ratio to the archive, members
    archive_max_bytes: int = Field(default=10 * 1024**3, gt=0, description="Bytes at most.")
    archive_max_ratio: float = Field(
        default=100.0, gt=0, description="Bytes written per byte of archive at most."
    )
    archive_max_members: int = Field(default=50_000, gt=0, description="Members at most.")

    # downloads: limits of each file (terrapipe.transfer.policy.TransferOptions.from_settings)
    download_max_size: int | None = Field(
        default=50 << 30, description="Bytes a file of unknown size may reach (CLI --max-size)."
    )
    download_min_speed: float = Field(
        default=1024.0, description="Bytes/s below which a download is abandoned (0: never)."
    )
    download_min_speed_window_s: float = 30.0
    download_deadline_s: float | None = Field(
        default=None, description="Seconds a file may take in all (None: no deadline)."
    )
    download_read_timeout_s: float = 60.0

    raster_memory_budget: ByteSize = Field(
        default=ByteSize(2 * 1024**3),
        description="Largest raster window a workflow reads at once (bytes or '4GiB'); a "
        "bigger window (or zone) is refused. Same default as terrapipe.geo's.",
    )

    # -- the HTTP service (terrapipe serve; jobs go to Celery when broker_url is set) -------
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

    _home_dir: tuple[Path, str, Path] | None = PrivateAttr(default=None)

    @property
    def home_dir(self) -> Path:
        """``home`` made absolute, symlinks resolved (kept while ``home`` and the working
        directory stay the same: resolving walks every component, and a job asks often)."""
        cwd = os.getcwd()
        memo = self._home_dir
        if memo is None or memo[0] != self.home or memo[1] != cwd:
            memo = self._home_dir = (self.home, cwd, self.home.expanduser().resolve())
        return memo[2]

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
