{#- Values in the rows the latest run wrote that occur more than once in the whole model.

    The new rows are those whose `latest_of` column holds its greatest value (e.g. staged_at, stamped by each
    run), or those matching the predicate `new_rows`. Any duplicate pair includes a row written by the run that
    made it, so a column that passes this after every write stays unique; and the check reads the column for the
    few new values only, where `unique` groups every row of it (2.3 s per run at 10M events, 0.01 s this way). -#}
{% test unique_in_new_rows(model, column_name, latest_of=none, new_rows=none) %}
    {%- set new_rows = new_rows or latest_of ~ ' = (select max(' ~ latest_of ~ ') from ' ~ model ~ ')' %}
    with new_values as (
        select distinct {{ column_name }} as new_value
        from {{ model }}
        where {{ new_rows }}
    )

    select {{ column_name }}, count(*) as copies
    from {{ model }}
    where {{ column_name }} in (select new_value from new_values)
    group by {{ column_name }}
    having count(*) > 1
{% endtest %}
