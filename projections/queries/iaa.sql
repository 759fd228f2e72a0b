-- iaa: agreement beside gold accuracy, per time window, schema version, question and slice.
-- Every row names its metric and window, so no two rows look alike:
--   source 'projection': metric 'pairwise_agreement', the mean per-item agreement of the crowd
--     (share of agreeing vote pairs, v_item_agreement; windowed by the item's last vote), in
--     windows of `days` days starting on Mondays 00:00 UTC like the stream's weeks (window
--     'day' for 1, 'week' for 7, else 'N days'); gold accuracy is the share of crowd votes on
--     gold items that match gold (v_gold_votes; question 'label' only).
--   source 'stream': the IaaWindowClosed events the streaming iaa stage emitted, as recorded:
--     one per window ('day' and 'week'), schema version, question, slice and metric
--     ('krippendorff_alpha_nominal' or 'pairwise_agreement').
-- Read agreement on its metric's own scale (labeltrail.quality.blindspots.AGREEMENT_SCALES):
-- alpha near 0 and pairwise 0.9 can describe the same slice.
-- Parameters: days UInt16 (window length), slice_key String (comment attribute to slice by),
--             schema_version String ('' for every version)
SELECT * FROM (
SELECT
    'projection' AS source,
    multiIf({days:UInt16} = 1, 'day', {days:UInt16} = 7, 'week',
            concat(toString({days:UInt16}), ' days')) AS window,
    window_start,
    window_start + toIntervalDay({days:UInt16}) AS window_end,
    schema_version,
    question,
    slice,
    'pairwise_agreement' AS metric,
    avgOrNull(item_agreement) AS agreement,
    avgOrNull(gold_correct) AS gold_accuracy,
    countIf(item_agreement IS NOT NULL) AS n_items,
    countIf(gold_correct IS NOT NULL) AS n_gold_votes
FROM
(
    SELECT toStartOfInterval(a.answered_at, toIntervalDay({days:UInt16}),
                             toDateTime64('1970-01-05 00:00:00', 3, 'UTC')) AS window_start,
           a.schema_version AS schema_version, a.question AS question,
           c.attributes[{slice_key:String}] AS slice,
           CAST(a.agreement, 'Nullable(Float64)') AS item_agreement,
           CAST(NULL, 'Nullable(Float64)') AS gold_correct
    FROM v_item_agreement AS a
    LEFT JOIN v_comment_slices AS c ON c.comment_id = a.comment_id
    UNION ALL
    SELECT toStartOfInterval(g.voted_at, toIntervalDay({days:UInt16}),
                             toDateTime64('1970-01-05 00:00:00', 3, 'UTC')) AS window_start,
           g.schema_version, 'label' AS question,
           c.attributes[{slice_key:String}] AS slice,
           CAST(NULL, 'Nullable(Float64)') AS item_agreement,
           CAST(toFloat64(g.correct), 'Nullable(Float64)') AS gold_correct
    FROM v_gold_votes AS g
    LEFT JOIN v_comment_slices AS c ON c.comment_id = g.comment_id
)
WHERE {schema_version:String} = '' OR schema_version = {schema_version:String}
GROUP BY window_start, schema_version, question, slice
UNION ALL
SELECT 'stream' AS source, toString(window) AS window, window_start, window_end,
       schema_version, question, slice, toString(metric) AS metric,
       agreement, gold_accuracy, n_items, n_gold_items AS n_gold_votes
FROM iaa_windows FINAL
WHERE {schema_version:String} = '' OR schema_version = {schema_version:String}
)
ORDER BY window_start, window, schema_version, question, slice, source, metric
