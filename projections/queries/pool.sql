-- pool: who stands behind the labels: for every current label, the annotators it names (crowd
-- and expert), grouped by one attribute, per class and slice, against a target mix. Only
-- consented, self-reported demographics are ever stored; an annotator without consent counts as
-- 'undisclosed'. 'locale' and 'pool' are operational attributes, always known. Rows with class
-- and slice '*' are the whole pool behind every label.
-- Parameters: attribute String, slice_key String, schema_version String ('' for all),
--             target String (JSON object: value -> target share, e.g. {"18-24": 0.25})
SELECT
    label_class,
    slice,
    value,
    n,
    n / sum(n) OVER (PARTITION BY label_class, slice) AS share,
    JSONExtract({target:String}, value, 'Nullable(Float64)') AS target_share,
    share - target_share AS gap
FROM
(
    SELECT
        if(grouping(l.label) = 1, '*', l.label) AS label_class,
        if(grouping(s.slice) = 1, '*', s.slice) AS slice,
        multiIf({attribute:String} = 'locale', a.locale,
                {attribute:String} = 'pool', a.pool,
                a.demographics[{attribute:String}] != '', a.demographics[{attribute:String}],
                'undisclosed') AS value,
        count() AS n
    FROM
    (
        SELECT comment_id, label, arrayJoin(annotator_ids) AS annotator_id
        FROM v_current_labels
        WHERE {schema_version:String} = '' OR schema_version = {schema_version:String}
    ) AS l
    LEFT JOIN (SELECT comment_id, attributes[{slice_key:String}] AS slice FROM v_comment_slices)
        AS s ON s.comment_id = l.comment_id
    LEFT JOIN (SELECT * FROM annotators FINAL) AS a ON a.annotator_id = l.annotator_id
    GROUP BY GROUPING SETS ((l.label, s.slice, value), (value))
)
ORDER BY label_class = '*' DESC, label_class, slice, value
