"""The dbt project as dagster-dbt sees it. `make manifest` builds target/manifest.json; nothing parses at import."""

from dagster_dbt import DbtProject

from orchestration.paths import DBT_PROJECT_DIR

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
