{#- Bounds on what a client's values can add to a mart.

    label_ranks: one row per distinct client label (a feature name, a trait value) of `labelled` (a relation or
    aliased subquery with columns `label` and `user`), with its distinct users and whether a mart folds it into the
    '(other)' bucket. The var label_max_values (default 50) labels with the most users keep a row of their own
    (ties by name); `reserved` labels (the models' own fallbacks such as '(invalid)' and 'unknown') are always
    kept; a client's own '(other)' always folds, so the bucket's label stays unique. Null labels are left out.
    marts.data_health_flags counts what was folded. -#}
{% macro label_ranks(labelled, label, user, reserved=['(invalid)']) -%}
    {%- set reserved_list -%}
        {%- for name in reserved + ['(other)'] %}'{{ name }}'{{ ", " if not loop.last }}{% endfor -%}
    {%- endset -%}
    select
        {{ label }} as label,
        count(distinct {{ user }}) as users,
        {{ label }} = '(other)'
            or ({{ label }} not in ({{ reserved_list }})
                and row_number() over (
                    partition by {{ label }} in ({{ reserved_list }})
                    order by count(distinct {{ user }}) desc, {{ label }}
                ) > {{ var('label_max_values') }}) as is_folded
    from {{ labelled }}
    where {{ label }} is not null
    group by {{ label }}
{%- endmacro %}

{#- The int_users columns marts.cohort_retention_by_dimension splits by (data_health_flags counts their folds). -#}
{% macro retention_split_dimensions() -%}
    {{ return(['first_touch_channel', 'country', 'plan']) }}
{%- endmacro %}

{#- An id a client sent (message_id, user_id, anonymous_id), trimmed, null when empty, and at most
    var id_max_length characters: a longer one becomes '(long id) ' and its md5, so it still names one user (or
    event) but never carries a megabyte into every table that holds it (counted in marts.data_health_flags). -#}
{% macro bounded_id(column) -%}
    case
        when length(trim({{ column }})) > {{ var('id_max_length') }}
            then {{ dbt.concat(["'(long id) '", dbt.hash('trim(' ~ column ~ ')')]) }}
        else nullif(trim({{ column }}), '')
    end
{%- endmacro %}
