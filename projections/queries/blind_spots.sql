-- blind_spots: slices where the crowd agrees with itself but not with gold: pairwise agreement
-- (mean share of agreeing vote pairs per item, on the label) at least min_agreement while gold
-- accuracy is at most max_gold_accuracy, over at least min_gold gold votes, over the whole
-- history (window 'all'). Agreement is not correctness. Windows the streaming iaa stage
-- flagged (IaaWindowClosed.blind_spot) are listed with source 'stream' and their window ('day'
-- or 'week'): only their pairwise_agreement row, at least min_agreement. The stream flags a
-- slice on pairwise agreement and marks its alpha row too, but alpha inside such a slice is
-- near 0 (its items share a class), so it is no measure of the crowd agreeing with itself.
-- labeltrail audit blind-spots defaults min_agreement to where pairwise agreement reads high
-- (labeltrail.quality.blindspots.high_agreement_from).
-- Parameters: min_agreement Float64, max_gold_accuracy Float64, min_gold UInt32,
--             slice_key String
SELECT * FROM (
SELECT
    'projection' AS source,
    schema_version,
    slice,
    'all' AS window,
    CAST(NULL, 'Nullable(DateTime64(3, \'UTC\'))') AS window_start,
    'pairwise_agreement' AS metric,
    agreement,
    gold_accuracy,
    n_items,
    n_gold_votes
FROM
(
    SELECT schema_version, slice,
           avgOrNull(item_agreement) AS agreement, avgOrNull(gold_correct) AS gold_accuracy,
           countIf(item_agreement IS NOT NULL) AS n_items,
           countIf(gold_correct IS NOT NULL) AS n_gold_votes
    FROM
    (
        SELECT a.schema_version AS schema_version, c.attributes[{slice_key:String}] AS slice,
               CAST(a.agreement, 'Nullable(Float64)') AS item_agreement,
               CAST(NULL, 'Nullable(Float64)') AS gold_correct
        FROM v_item_agreement AS a
        LEFT JOIN v_comment_slices AS c ON c.comment_id = a.comment_id
        WHERE a.question = 'label'
        UNION ALL
        SELECT g.schema_version, c.attributes[{slice_key:String}] AS slice,
               CAST(NULL, 'Nullable(Float64)'), CAST(toFloat64(g.correct), 'Nullable(Float64)')
        FROM v_gold_votes AS g
        LEFT JOIN v_comment_slices AS c ON c.comment_id = g.comment_id
    )
    GROUP BY schema_version, slice
)
WHERE agreement >= {min_agreement:Float64}
  AND gold_accuracy <= {max_gold_accuracy:Float64}
  AND n_gold_votes >= {min_gold:UInt32}
UNION ALL
SELECT 'stream', schema_version, slice, toString(window), window_start, toString(metric),
       agreement, gold_accuracy, n_items, n_gold_items
FROM iaa_windows FINAL
WHERE blind_spot AND metric = 'pairwise_agreement' AND agreement >= {min_agreement:Float64}
)
ORDER BY gold_accuracy, slice, source, window, window_start
