"""Copy new objects of an S3 (or S3-compatible) bucket into the landing folder, where ingestion takes them.

Objects under LANDING_S3_PREFIX land as `landing/s3/<bucket>/<key>`, so the manifest, deduplication and per-file
reconciliation are the folder's own: a file is loaded once whatever copies it, and a copy of an object already
loaded is recorded as such. Each object is streamed to a hidden `.part` name (which discovery skips) with a byte
bound, stamped with the object's LastModified time and renamed into place, so ingestion never sees half an object.
An object is copied again only when its size changed. Keys are client data: one that would not make a plain
relative path (`..`, an empty or hidden segment, a NUL byte, a segment over 255 bytes) is reported and skipped, as is
an object over LANDING_S3_MAX_OBJECT_BYTES; one sync copies at most LANDING_S3_MAX_BYTES_PER_SYNC.

Segment's S3 destination writes gzipped JSON lines named `<timestamp>.<hash>.gz` (readers.file_format knows the
name), RudderStack's `<timestamp>.<source>.json.gz`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from settings import IngestSettings

S3_FOLDER = "s3"
CHUNK_BYTES = 1 << 20
MAX_SEGMENT_BYTES = 255

log = logging.getLogger(__name__)


@dataclass
class S3Sync:
    """What one sync copied, found already copied, and skipped (key: reason)."""

    copied: list[str] = field(default_factory=list)
    bytes_copied: int = 0
    already_copied: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    deferred: int = 0  # objects left for the next sync (the per-sync byte bound was reached)
    seconds: float = 0.0

    def summary(self) -> str:
        """One line on what the sync did."""
        return (
            f"Copied {len(self.copied)} object(s) ({self.bytes_copied:,} bytes) in {self.seconds:.1f} s; "
            f"{self.already_copied} copied before, {len(self.skipped)} skipped, {self.deferred} left for the next "
            "sync."
        )


def s3_client(settings: IngestSettings) -> Any:
    """A boto3 S3 client for the settings' endpoint and region (credentials from boto3's usual chain)."""
    import boto3  # only when a bucket is set: boto3 takes a second to import

    return boto3.client("s3", endpoint_url=settings.s3_endpoint_url or None, region_name=settings.s3_region)


def local_path(key: str) -> Path | None:
    """The key as a relative path under landing/s3/<bucket>/, or None when it would not make a plain one."""
    if "\x00" in key or len(key.encode()) > 1024:
        return None
    parts = [part for part in key.split("/") if part != ""]
    if not parts or key.endswith("/"):
        return None
    for part in parts:
        if part in (".", "..") or part.startswith(".") or len(part.encode()) > MAX_SEGMENT_BYTES:
            return None
    return Path(*parts)


def sync_s3(settings: IngestSettings, client: Any | None = None) -> S3Sync:
    """Copy the bucket's new objects into the landing folder (nothing when LANDING_S3_BUCKET is empty)."""
    result = S3Sync()
    if not settings.s3_bucket:
        return result
    started = time.perf_counter()
    client = client or s3_client(settings)
    bucket_path = local_path(settings.s3_bucket)
    if bucket_path is None or len(bucket_path.parts) != 1:
        raise ValueError(f"LANDING_S3_BUCKET {settings.s3_bucket!r} is not a bucket name")
    root = settings.landing_dir / S3_FOLDER / bucket_path
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=settings.s3_bucket, Prefix=settings.s3_prefix):
        for item in page.get("Contents", []):
            _take(client, settings, root, item, result)
    result.seconds = time.perf_counter() - started
    return result


def _take(client: Any, settings: IngestSettings, root: Path, item: dict[str, Any], result: S3Sync) -> None:
    """Copy one listed object unless it is already copied, skipped or left for the next sync; records which."""
    key, size = item["Key"], int(item["Size"])
    relative = local_path(key)
    if relative is None:
        if not key.endswith("/"):  # a folder marker is no object to load
            result.skipped[key[:300]] = "key does not make a plain relative path"
        return
    if size > settings.s3_max_object_bytes:
        result.skipped[key] = f"{size} bytes is over LANDING_S3_MAX_OBJECT_BYTES ({settings.s3_max_object_bytes})"
        return
    target = root / relative
    if target.exists() and not target.is_symlink() and target.stat().st_size == size:
        result.already_copied += 1
        return
    if result.bytes_copied + size > settings.s3_max_bytes_per_sync and result.copied:
        result.deferred += 1
        return
    copied = _copy(client, settings, key, target, item["LastModified"].timestamp())
    if copied is None:
        result.skipped[key] = f"larger than its listed {size} bytes"
        return
    result.copied.append(target.relative_to(settings.landing_dir).as_posix())
    result.bytes_copied += copied


def _copy(client: Any, settings: IngestSettings, key: str, target: Path, modified: float) -> int | None:
    """Stream one object to a hidden name beside `target`, then rename it into place; None (nothing left) when it
    turns out larger than the bound."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    written = 0
    body = client.get_object(Bucket=settings.s3_bucket, Key=key)["Body"]
    try:
        with open(partial, "wb") as handle:
            for chunk in body.iter_chunks(CHUNK_BYTES):
                written += len(chunk)
                if written > settings.s3_max_object_bytes:
                    handle.close()
                    partial.unlink()
                    return None
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.utime(partial, (modified, modified))
        os.replace(partial, target)
    finally:
        body.close()
        if partial.exists():
            partial.unlink()
    return written
