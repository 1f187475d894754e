"""Landing files: render each planned file, compress it, write it under a hidden name, rename it into place.

Rendering (numpy + DuckDB) runs on the calling thread; compression and writing overlap with it on worker
threads (zlib, pyarrow and file I/O release the GIL). Output bytes depend only on the rows, never on timing.
"""

from __future__ import annotations

import io
import os
import re
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from demo_events.layout import FilePlan, Layout
from demo_events.render import Renderer, Source

GZIP_LEVEL = 1  # fast; JSON lines still shrink about fourfold
GENERATED_NAME = re.compile(r"^\.?events_\d{4,}\.(jsonl|jsonl\.gz|csv|csv\.gz|parquet)(\.tmp)?$")


def gzip_bytes(data: bytes | memoryview, level: int = GZIP_LEVEL) -> bytes:
    """A gzip stream with a fixed header (no name, no time), so equal input gives equal bytes."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def csv_bytes(table: pa.Table) -> bytes:
    """CSV with a header row; strings quoted where needed, nulls as empty cells."""
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=True))
    return sink.getvalue()


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write through `write(tmp)` to a hidden temp name in the same folder, then rename onto `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_stale(landing: Path, keep: set[str]) -> list[str]:
    """Delete earlier generator output (events_NNNN.* and its temp names) that this run does not rewrite."""
    removed = []
    for path in sorted(landing.iterdir()):
        if path.is_file() and GENERATED_NAME.match(path.name) and path.name not in keep:
            path.unlink()
            removed.append(path.name)
    return removed


def _save(plan: FilePlan, path: Path, payload: bytes | memoryview | pa.Table) -> None:
    def write(tmp: Path) -> None:
        if plan.fmt == "parquet":
            pq.write_table(payload, tmp, compression="zstd")
            return
        data = csv_bytes(payload) if isinstance(payload, pa.Table) else payload
        tmp.write_bytes(gzip_bytes(data) if plan.fmt.endswith(".gz") else data)

    write_atomic(path, write)


def _finished(
    future: Future[None],
    plan: FilePlan,
    slots: threading.BoundedSemaphore,
    on_file: Callable[[FilePlan], None] | None,
) -> None:
    slots.release()
    if on_file and not future.cancelled() and future.exception() is None:
        on_file(plan)


def write_files(
    layout: Layout,
    source: Source,
    landing: Path,
    on_file: Callable[[FilePlan], None] | None = None,
    workers: int = 2,
) -> None:
    """Write every planned file into `landing`; `on_file` is called as each one is in place."""
    landing.mkdir(parents=True, exist_ok=True)
    remove_stale(landing, {plan.name for plan in layout.files})
    renderer = Renderer(source)
    slots = threading.BoundedSemaphore(workers + 1)  # rendered files waiting or being written
    pending: list[Future[None]] = []
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="demo-events-writer") as pool:
            for plan in layout.files:
                batch = renderer.batch(layout.order[plan.start : plan.stop])
                if plan.fmt.startswith("jsonl"):
                    payload: bytes | pa.Table = renderer.lines(batch, plan.camel)
                else:
                    payload = renderer.table(batch, plan.camel)
                del batch
                slots.acquire()
                future = pool.submit(_save, plan, landing / plan.name, payload)
                future.add_done_callback(lambda f, plan=plan: _finished(f, plan, slots, on_file))
                pending.append(future)
                finished = [f for f in pending if f.done()]
                for done in finished:
                    done.result()  # surface a failed write now rather than at the end
                pending = [f for f in pending if f not in finished]
            for future in pending:
                future.result()
    finally:
        renderer.close()
