"""Where ingestion reads and writes, and the thresholds of the input contract."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def data_dir_from_env() -> Path:
    """`DATA_DIR` (default `data/` under the working directory), made absolute."""
    return Path(os.environ.get("DATA_DIR", "data")).expanduser().resolve()


@dataclass(frozen=True)
class IngestSettings:
    """Paths and contract thresholds for one ingestion run."""

    data_dir: Path
    settle_seconds: float = 5.0
    future_tolerance_hours: float = 24.0
    max_property_bytes: int = 1_048_576
    batch_rows: int = 100_000

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @classmethod
    def from_env(cls) -> IngestSettings:
        """Settings from `DATA_DIR`, `SETTLE_SECONDS` and `FUTURE_TOLERANCE_HOURS`, with the contract's defaults."""
        return cls(
            data_dir=data_dir_from_env(),
            settle_seconds=float(os.environ.get("SETTLE_SECONDS", "5")),
            future_tolerance_hours=float(os.environ.get("FUTURE_TOLERANCE_HOURS", "24")),
        )
