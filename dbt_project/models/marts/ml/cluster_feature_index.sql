-- Each cluster's mean of each profile feature against the mean over all clustered users (1 = the same).
with profiles as (

    select * from {{ ref('cluster_profiles') }}

),

features as (

    {%- for feature in cluster_profile_features() %}
    select
        cluster_id,
        cluster_name,
        users,
        '{{ feature }}' as feature,
        {{ loop.index }} as feature_order,
        cast({{ feature }} as double) as value
    from profiles
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

overall as (

    select
        feature,
        cast(sum(cast(value * users as decimal(38, 12))) as double) / nullif(sum(users), 0) as overall
    from features
    group by feature

)

select
    features.cluster_id,
    features.cluster_name,
    features.feature,
    features.feature_order,
    features.value,
    overall.overall,
    features.value / nullif(overall.overall, 0) as feature_index
from features
inner join overall on features.feature = overall.feature
