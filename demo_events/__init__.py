"""Demo event generator: realistic Segment-spec events with planted behaviour and a ground-truth file.

Plain Python (numpy, pyarrow, DuckDB; no dagster import). `generate` writes files into
`<data_dir>/landing` and the truth into `<data_dir>/demo_truth`; `demo-events` is its command line.
"""

from demo_events.config import GeneratorConfig
from demo_events.generate import generate, users_for_events
from demo_events.truth import Truth

__all__ = ["GeneratorConfig", "Truth", "generate", "users_for_events"]
