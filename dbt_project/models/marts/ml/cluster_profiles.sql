-- One row per behavioural cluster of the champion clustering model (ml.user_clusters): its size, how confidently
-- and on how much data its members are placed, and the mean features of its members at as_of. Empty until a
-- clustering model has been trained.
with clusters as (

    select * from {{ source('ml', 'user_clusters') }}

),

features as (

    select * from {{ ref('ml_user_features') }}

),

members as (

    select
        clusters.cluster_id,
        clusters.cluster_name,
        clusters.model_version,
        clusters.confidence,
        clusters.is_low_data,
        features.*
    from clusters
    inner join features on clusters.user_id = features.user_id

),

profiles as (

    select
        cluster_id,
        max(cluster_name) as cluster_name,
        max(model_version) as model_version,
        count(*) as users,
        {{ stable_avg('confidence') }} as mean_confidence,
        sum(case when is_low_data then 1 else 0 end) as low_data_users,
        {%- for feature in cluster_profile_features() %}
        {{ stable_avg(feature) }} as {{ feature }}{{ "," if not loop.last }}
        {%- endfor %}
    from members
    group by cluster_id

)

select
    cluster_id,
    cluster_name,
    model_version,
    users,
    cast(users as double) / sum(users) over () as share_of_users,
    mean_confidence,
    low_data_users,
    cast(low_data_users as double) / users as low_data_share,
    {%- for feature in cluster_profile_features() %}
    {{ feature }}{{ "," if not loop.last }}
    {%- endfor %}
from profiles
