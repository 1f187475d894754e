"""Which rows go in which file, in what order, in which format and naming style."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from demo_events.config import FORMATS, MINUTE_MS, GeneratorConfig
from demo_events.dirty import CODE, Defects
from demo_events.sampling import apportion

SAME_FILE_JITTER_MS = 10 * MINUTE_MS  # a same-file duplicate lands within minutes of its original


@dataclass(frozen=True)
class FilePlan:
    """One output file: its name, format, naming style and the slice of the write order it holds."""

    name: str
    fmt: str
    camel: bool
    start: int
    stop: int

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass
class Layout:
    """Write order of all rows (ids below n_clean are clean rows, the rest defects) and the files."""

    order: np.ndarray  # int64
    n_clean: int
    files: list[FilePlan]

    def file_of_position(self) -> np.ndarray:
        """File number of every position in the write order."""
        sizes = np.array([f.rows for f in self.files], dtype=np.int64)
        return np.repeat(np.arange(len(self.files)), sizes)


def plan_layout(
    received_ms: np.ndarray,
    defects: Defects,
    config: GeneratorConfig,
    rng: np.random.Generator,
) -> Layout:
    """Order rows by arrival and cut them into files of `file_rows` rows.

    Defects sit at their template's arrival time. Same-file duplicates follow their original within
    minutes; later-file duplicates are inserted one to two files' worth of rows after their original.
    """
    n_clean = len(received_ms)
    stay = np.flatnonzero(~defects.later_file)
    base_ids = np.concatenate([np.arange(n_clean, dtype=np.int64), n_clean + stay])
    keys = np.concatenate([received_ms, received_ms[defects.src[stay]]])
    dup_stay = n_clean + np.flatnonzero(defects.code[stay] == CODE["duplicate"])
    keys[dup_stay] += rng.integers(0, SAME_FILE_JITTER_MS, len(dup_stay))
    base_sorted = base_ids[np.argsort(keys, kind="stable")]

    clean_pos = np.empty(n_clean, dtype=np.int64)
    is_clean = base_sorted < n_clean
    clean_pos[base_sorted[is_clean]] = np.flatnonzero(is_clean)
    moved = np.flatnonzero(defects.later_file)
    step = config.file_rows
    target = clean_pos[defects.src[moved]] + step + rng.integers(0, step, len(moved))
    order = np.insert(base_sorted, np.minimum(target, len(base_sorted)), n_clean + moved)

    n_files = max(1, -(-len(order) // step))
    formats = file_formats(config, n_files, rng)
    camel = np.zeros(n_files, dtype=bool)
    camel[rng.choice(n_files, size=camel_file_count(config.camel_share, n_files), replace=False)] = True
    width = max(4, len(str(n_files)))
    files = [
        FilePlan(
            name=f"events_{i + 1:0{width}d}.{formats[i]}",
            fmt=formats[i],
            camel=bool(camel[i]),
            start=i * step,
            stop=min((i + 1) * step, len(order)),
        )
        for i in range(n_files)
    ]
    return Layout(order=order, n_clean=n_clean, files=files)


def camel_file_count(share: float, n_files: int) -> int:
    """Files in camelCase: the share rounded half up, and at least one when there are several files."""
    count = int(share * n_files + 0.5)
    return max(count, 1) if share > 0 and n_files > 1 else count


def file_formats(config: GeneratorConfig, n_files: int, rng: np.random.Generator) -> list[str]:
    """Format of each file: the configured one, or a shuffled mix in which every format appears if it can."""
    if config.file_format != "mix":
        return [config.file_format] * n_files
    if n_files == 1:
        return ["jsonl.gz"]
    names = [f for f in FORMATS if config.format_mix.get(f, 0) > 0]
    counts = apportion([config.format_mix[f] for f in names], n_files)
    while n_files >= len(names) and (counts == 0).any():
        counts[np.argmax(counts)] -= 1
        counts[np.argmin(counts)] += 1
    labels = rng.permutation(np.repeat(np.arange(len(names)), counts))
    return [names[i] for i in labels]
