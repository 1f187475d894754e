{#- An audience whose members are known only as a current state (a score or a segment at one instant): each run
    compares the members now with the open entries kept from earlier runs (an incremental model), so a member
    gets one entry when it joins and the entry gets its exit time when it leaves; staying in changes nothing.
    `members`: a select of user_id, audience and the `detail_columns`; `observed_at`: a select of one row with
    column observed_at (the instant the state describes). When observed_at is null (nothing scored yet) nothing
    enters or leaves. -#}
{% macro state_audience(members, observed_at, detail_columns=[]) %}
with observation as (

    {{ observed_at }}

),

current_members as (

    {{ members }}

),

{% if is_incremental() %}
open_entries as (

    select * from {{ this }} where exited_at is null

),
{% endif %}

entries as (

    select
        current_members.audience,
        current_members.user_id,
        observation.observed_at as entered_at,
        cast(null as timestamp) as exited_at
        {%- for column in detail_columns %},
        current_members.{{ column }}
        {%- endfor %}
    from current_members
    cross join observation
    {% if is_incremental() %}
    left join open_entries
        on current_members.audience = open_entries.audience and current_members.user_id = open_entries.user_id
    where open_entries.user_id is null and observation.observed_at is not null
    {% else %}
    where observation.observed_at is not null
    {% endif %}

)

{% if is_incremental() %}
, exits as (

    select
        open_entries.audience,
        open_entries.user_id,
        open_entries.entered_at,
        observation.observed_at as exited_at
        {%- for column in detail_columns %},
        open_entries.{{ column }}
        {%- endfor %}
    from open_entries
    cross join observation
    left join current_members
        on open_entries.audience = current_members.audience and open_entries.user_id = current_members.user_id
    where current_members.user_id is null and observation.observed_at > open_entries.entered_at

)
{% endif %}

select * from entries
{% if is_incremental() %}
union all
select * from exits
{% endif %}
{% endmacro %}
