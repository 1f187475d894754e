-- Rule-based segments of marts.user_segments as audiences: one audience per entry of var segment_audiences
-- (name: SQL condition on user_segments' columns). Segments describe the state at as_of, so entries and exits
-- are kept across runs (incremental): a user enters at the as_of of the first run that finds it in the segment
-- and exits at the as_of of the first run that does not.
{{ config(materialized='incremental', unique_key=['audience', 'user_id', 'entered_at']) }}

{%- set members -%}
    {%- for name, condition in var('segment_audiences').items() %}
    select 'segment_{{ name }}' as audience, user_id, rfm_segment, lifecycle_stage
    from {{ ref('user_segments') }}
    where {{ condition }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
{%- endset %}

{{ state_audience(
    members=members,
    observed_at="select as_of as observed_at from " ~ ref('int_as_of'),
    detail_columns=['rfm_segment', 'lifecycle_stage'],
) }}
