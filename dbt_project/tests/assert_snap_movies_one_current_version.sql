{#
    SCD2 integrity of snap_movies: at most one current version (dbt_valid_to NULL) per movie,
    and no version that ends before it starts.
#}
select movie_id, 'several current versions' as problem
from {{ ref('snap_movies') }}
where dbt_valid_to is null
group by movie_id
having count(*) > 1

union all

select movie_id, 'valid_to before valid_from' as problem
from {{ ref('snap_movies') }}
where dbt_valid_to is not null
  and dbt_valid_to < dbt_valid_from
