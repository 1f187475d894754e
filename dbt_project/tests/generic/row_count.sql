{% test row_count(model, expected) %}
    select row_total
    from (select count(*) as row_total from {{ model }}) as counted
    where row_total <> {{ expected }}
{% endtest %}
