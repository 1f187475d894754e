{#- The incremental materialization on Spark with plain Parquet tables (no Delta or Iceberg, so no MERGE and no
    DELETE), in place of dbt-spark's, which offers neither `delete+insert` nor a way for a model to read its own
    table while overwriting it. The models keep one meaning on both engines:

    - no unique_key: the new rows are appended;
    - a unique_key (`delete+insert`, the models' strategy on DuckDB): the rows of the table whose key is among the
      new rows' are replaced by the new rows; with config `replaces_users_in_scope` (the per-user models,
      macros/incremental_users.sql) so are all rows of the users the run recomputes, which covers the users a
      DuckDB post-hook deletes (re-stitched away: no rows left to write).

    Every step is one statement (Spark's session cursor parses one). The new rows are written to a table first,
    because the model's query may read the model's own table (its watermark, its open entries), which Spark
    refuses to overwrite while reading; the rows kept are copied out beside them, then the table is overwritten
    from both.

    With config `spark_partition_by` ({'column': name} for a column of the model, or {'column': name,
    'expression': sql} for one the materialization adds) the table is partitioned and a run rewrites only the
    partitions it touches: those of the new rows and of the rows they replace (insert overwrite in the table's
    dynamic partition mode; a touched partition left with no rows is dropped). Without it a run rewrites the
    table. -#}
{% materialization incremental, adapter='spark', supported_languages=['sql'] -%}
  {%- set unique_key = config.get('unique_key', none) -%}
  {%- set partition = config.get('spark_partition_by', none) -%}
  {%- set target_relation = this -%}
  {%- set existing_relation = load_relation(this) -%}
  {%- set new_rows = make_spark_work_relation(this, '__dbt_new') -%}
  {%- set kept_rows = make_spark_work_relation(this, '__dbt_kept') -%}
  {%- set model_sql = spark_partitioned_sql(sql, partition) -%}

  {{ run_hooks(pre_hooks) }}

  {%- if existing_relation is none or existing_relation.is_view or should_full_refresh()
        or not spark_partitioned_as(existing_relation, partition) -%}
    {%- if existing_relation is not none -%}
      {% do adapter.drop_relation(existing_relation) %}
    {%- endif -%}
    {%- call statement('main') -%}
      {%- if partition is none -%}
        {{ create_table_as(False, target_relation, sql) }}
      {%- else -%}
        create table {{ target_relation }} using parquet
        partitioned by ({{ partition.column }})
        options (partitionOverwriteMode 'dynamic')
        as {{ model_sql }}
      {%- endif -%}
    {%- endcall -%}
  {%- else -%}
    {% do drop_spark_work_relation(new_rows) %}
    {% do run_query('create table ' ~ new_rows ~ ' using parquet as ' ~ model_sql) %}
    {%- set table_columns = adapter.get_columns_in_relation(target_relation) -%}
    {%- set columns = table_columns | map(attribute='quoted') | join(', ') -%}
    {%- if unique_key is none -%}
      {%- call statement('main') -%}
        insert into table {{ target_relation }} select {{ columns }} from {{ new_rows }}
      {%- endcall -%}
    {%- else -%}
      {%- set keys = [unique_key] if unique_key is string else unique_key -%}
      {%- set replaces_users = config.get('replaces_users_in_scope', false) -%}
      {%- set replaced -%}
        (exists (
            select 1 from {{ new_rows }} as replacing
            where {% for key in keys %}replacing.{{ key }} <=> existing.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
        )
        {%- if replaces_users %}
          or existing.user_id in (select user_id from {{ users_in_scope() }} where user_id is not null)
        {%- endif %})
      {%- endset -%}
      {%- set in_touched = 'true' -%}
      {%- if partition is not none -%}
        {%- set touched = spark_touched_partitions(target_relation, new_rows, partition.column, replaced) -%}
        {%- set in_touched = spark_partition_filter(table_columns, partition.column, touched) -%}
      {%- endif -%}
      {% do drop_spark_work_relation(kept_rows) %}
      {% set kept_query %}
        create table {{ kept_rows }} using parquet as
        select {{ columns }} from {{ target_relation }} as existing
        where {{ in_touched }} and not {{ replaced }}
      {% endset %}
      {% do run_query(kept_query) %}
      {%- call statement('main') -%}
        insert overwrite table {{ target_relation }}
        select {{ columns }} from {{ kept_rows }}
        union all
        select {{ columns }} from {{ new_rows }}
      {%- endcall -%}
      {%- if partition is not none -%}
        {% do spark_drop_emptied_partitions(target_relation, table_columns, partition.column, touched) %}
      {%- endif -%}
      {% do drop_spark_work_relation(kept_rows) %}
    {%- endif -%}
    {% do drop_spark_work_relation(new_rows) %}
  {%- endif -%}

  {% do persist_docs(target_relation, model) %}
  {{ run_hooks(post_hooks) }}
  {{ return({'relations': [target_relation]}) }}
{%- endmaterialization %}

{#- The model's query with the partition column the materialization adds (when the partition has an expression). -#}
{% macro spark_partitioned_sql(sql, partition) %}
  {%- if partition is none or partition.get('expression') is none -%}
    {{ return(sql) }}
  {%- endif -%}
  {{ return('select *, ' ~ partition.expression ~ ' as ' ~ partition.column ~ ' from (' ~ sql ~ ') as modelled') }}
{% endmacro %}

{#- Whether the table's layout is the one the config asks for (else the run rebuilds it, as after a change of
    partitioning). -#}
{% macro spark_partitioned_as(relation, partition) %}
  {%- set described = run_query('describe table ' ~ relation).columns[0].values() | list -%}
  {%- set partitioned = '# Partition Information' in described -%}
  {%- if partition is none -%}
    {{ return(not partitioned) }}
  {%- endif -%}
  {{ return(partitioned and partition.column in described) }}
{% endmacro %}

{#- The partition values a run rewrites: the new rows' and those of the rows they replace. -#}
{% macro spark_touched_partitions(relation, new_rows, column, replaced) %}
  {%- set query -%}
    select {{ column }} from {{ new_rows }}
    union
    select {{ column }} from {{ relation }} as existing where {{ replaced }}
  {%- endset -%}
  {{ return(run_query(query).columns[0].values() | list) }}
{% endmacro %}

{#- A filter on the partition column to the touched values, as typed literals so that Spark prunes the other
    partitions' files. -#}
{% macro spark_partition_filter(table_columns, column, values) %}
  {%- if values | length == 0 -%}
    {{ return('false') }}
  {%- endif -%}
  {%- set data_type = (table_columns | selectattr('name', 'equalto', column) | first).data_type -%}
  {%- set literals = [] -%}
  {%- for value in values if value is not none -%}
    {%- do literals.append("cast('" ~ value ~ "' as " ~ data_type ~ ")") -%}
  {%- endfor -%}
  {%- set clauses = [] -%}
  {%- if literals -%}
    {%- do clauses.append('existing.' ~ column ~ ' in (' ~ literals | join(', ') ~ ')') -%}
  {%- endif -%}
  {%- if none in values -%}
    {%- do clauses.append('existing.' ~ column ~ ' is null') -%}
  {%- endif -%}
  {{ return('(' ~ clauses | join(' or ') ~ ')') }}
{% endmacro %}

{#- A touched partition that the overwrite left with no rows (its users re-stitched away, say) still holds its old
    files in dynamic mode: dropped here. -#}
{% macro spark_drop_emptied_partitions(relation, table_columns, column, touched) %}
  {%- set remaining = run_query('select distinct ' ~ column ~ ' from ' ~ relation ~ ' as existing where '
        ~ spark_partition_filter(table_columns, column, touched)).columns[0].values() | list -%}
  {%- for value in touched if value is not none and value not in remaining -%}
    {% do run_query('alter table ' ~ relation ~ ' drop if exists partition (' ~ column ~ " = '" ~ value ~ "')") %}
  {%- endfor -%}
{% endmacro %}

{#- A table beside the model's that holds rows while a run replaces them; dropped when the run ends. -#}
{% macro make_spark_work_relation(relation, suffix) %}
  {{ return(relation.incorporate(path={'identifier': relation.identifier ~ suffix}, type='table')) }}
{% endmacro %}

{% macro drop_spark_work_relation(relation) %}
  {% do run_query('drop table if exists ' ~ relation) %}
{% endmacro %}
