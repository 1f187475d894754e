"""A hook that logs what each step of the warehouse's jobs cost: CPU seconds and peak memory of its process.

CPU counts this process and the programs it ran and waited for (dbt), from the end of the previous step in the same
process: under the multiprocess executor each step has a process of its own, under the in-process executor (the
warehouse's default: one DuckDB writer) the steps run one after another in one process. Peak memory is the
process's peak resident size so far (or a child's, when larger), so under the in-process executor it belongs to
the step where it first appears. `make bench` reads these lines back from the run's event log, beside each step's
wall time (bench/profile.py).
"""

import os
import resource

import dagster as dg

PROFILE_PREFIX = "step profile:"

# CPU seconds at the end of the last profiled step, per process
_cpu_at_last_step: dict[int, float] = {}


def usage() -> tuple[float, float]:
    """CPU seconds and peak resident MB of this process and the children it has waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return cpu, max(own.ru_maxrss, children.ru_maxrss) / 1024


@dg.success_hook(name="step_profile")
def step_profile(context: dg.HookContext) -> None:
    """Log the step's CPU seconds and the process's peak memory (see the module docstring)."""
    cpu, peak_mb = usage()
    since = cpu - _cpu_at_last_step.get(os.getpid(), 0.0)
    _cpu_at_last_step[os.getpid()] = cpu
    context.log.info(f"{PROFILE_PREFIX} cpu_seconds={since:.1f} peak_rss_mb={peak_mb:.0f}")
