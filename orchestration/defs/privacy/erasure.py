"""The erase_users job and the sensor that starts it for each file dropped in $DATA_DIR/privacy/requests/.

A request file holds user ids, comma- or newline-separated. The sensor passes only the file's name to the run, so no
clear id reaches Dagster's run storage; the file is deleted once the erasure has finished. Launched by hand from the
launchpad, the job takes `users` in its config instead: that run's config then holds the ids until the next erasure,
which deletes every finished erase_users run given ids that way (the ledger keeps the hashed record).
"""

import time
from pathlib import Path

import dagster as dg
from pydantic import Field

from orchestration.defs.resources import DUCKDB_WRITER_POOL, WarehouseResource
from orchestration.run_history import delete_runs, runs_naming
from privacy.erase import erase
from privacy.identities import parse_user_ids

JOB_NAME = "erase_users"
MAX_REQUEST_BYTES = 1 << 20
SETTLE_SECONDS = 1.0  # a request file modified this recently may still be being written
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


class ErasureConfig(dg.Config):
    users: list[str] = Field(default_factory=list, description="user ids to erase (stored in this run's config)")
    request_file: str = Field(default="", description="a request file's name in $DATA_DIR/privacy/requests/")


def read_request(requests_dir: Path, name: str) -> list[str]:
    """The user ids of a request file (a plain name inside requests_dir); raises ValueError when unusable."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"request file {name!r} is not a plain file name in {requests_dir}")
    path = requests_dir / name
    if path.is_symlink() or not path.is_file():
        raise ValueError(f"request file {name!r} is not a regular file in {requests_dir}")
    if path.stat().st_size > MAX_REQUEST_BYTES:
        raise ValueError(f"request file {name!r} is larger than {MAX_REQUEST_BYTES} bytes")
    return parse_user_ids(path.read_text(errors="replace").replace("\n", ","))


def _earlier_erasure_runs(instance: dg.DagsterInstance, current: str) -> list[str]:
    """Finished erase_users runs given clear ids in their config (the launchpad way)."""
    runs = instance.get_runs(dg.RunsFilter(job_name=JOB_NAME, statuses=FINISHED))
    found = []
    for run in runs:
        config = (run.run_config or {}).get("ops", {}).get("erase", {}).get("config", {})
        if run.run_id != current and config.get("users"):
            found.append(run.run_id)
    return found


@dg.op(
    name="erase",
    pool=DUCKDB_WRITER_POOL,
    description="Erase the users (and their stitched anonymous ids) from every store under DATA_DIR, suppress their "
    "later events, rebuild the dbt tables, rewrite the warehouse file and publish the serving copy again "
    "(privacy.erase; docs/privacy.md).",
)
def erase_op(context: dg.OpExecutionContext, config: ErasureConfig, warehouse: WarehouseResource) -> dg.Output:
    settings = warehouse.settings()
    users = list(config.users)
    if config.request_file:
        users += read_request(settings.privacy.requests_dir, config.request_file)
    users = parse_user_ids(users)
    instance, run_id = context.instance, context.run_id

    def scrub(ids: frozenset[str]) -> dict[str, int]:
        home = Path(instance.root_directory) if instance.root_directory else None
        doomed = set(runs_naming(instance, ids, skip=[run_id])) | set(_earlier_erasure_runs(instance, run_id))
        return {"runs_deleted": delete_runs(instance, sorted(doomed), home)}

    context.log.info(f"Erasing {len(users)} user id(s) (their ids are not logged)")
    report = erase(settings, users, progress=context.log.info, scrub_run_history=scrub)
    if config.request_file:
        (settings.privacy.requests_dir / config.request_file).unlink(missing_ok=True)
    context.log.info(report.summary())
    return dg.Output(
        report.request_id,
        metadata={
            "request_id": report.request_id,
            "users": len(report.user_hashes),
            "stitched_anonymous_ids": report.anonymous_ids,
            "seconds": round(sum(report.seconds.values()), 1),
            "removed": dg.MetadataValue.json(report.removed),
            "problems": len(report.problems),
        },
    )


@dg.job(
    name=JOB_NAME,
    description="Erase users everywhere (config `users`, or `request_file` in $DATA_DIR/privacy/requests/, which the "
    "erasure_requests sensor fills in); the erasure ledger records what each store lost.",
    tags={"dagster/max_runtime": str(2 * 60 * 60)},
)
def erase_users() -> None:
    erase_op()


@dg.sensor(
    job=erase_users,
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts erase_users for each request file in $DATA_DIR/privacy/requests/ (user ids, comma- or "
    "newline-separated); the run deletes the file when the erasure has finished.",
)
def erasure_requests(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    folder = warehouse.settings().privacy.requests_dir
    if not folder.is_dir():
        return dg.SkipReason(f"no request folder {folder}")
    now = time.time()
    requests = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_symlink() or not path.is_file():
            continue
        if now - path.stat().st_mtime < SETTLE_SECONDS:
            continue
        requests.append(path)
    if not requests:
        return dg.SkipReason("no erasure request waiting")
    return [
        dg.RunRequest(
            run_key=f"{path.name}:{path.stat().st_mtime_ns}",
            run_config={"ops": {"erase": {"config": {"request_file": path.name}}}},
        )
        for path in requests
    ]


@dg.definitions
def definitions() -> dg.Definitions:
    return dg.Definitions(jobs=[erase_users], sensors=[erasure_requests])
