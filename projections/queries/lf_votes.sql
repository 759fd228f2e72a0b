-- lf_votes: each labeling function's vote on each comment under one schema version (the lf
-- stage's WeakVoteCast; label NULL = it abstained), the LF named name@version, with the
-- comment's gold-set verdict ('' when it has none, the latest one when several): what
-- `labeltrail lf analyze --from clickhouse` reads.
-- Parameters: schema_version String
WITH gold AS
(
    SELECT comment_id, argMax(label, (recorded_at, event_id)) AS gold_label
    FROM v_adjudications
    WHERE is_gold AND schema_version = {schema_version:String}
    GROUP BY comment_id
)
SELECT
    v.comment_id AS comment_id,
    concat(v.source_name, '@', v.source_version) AS lf,
    tupleElement(argMax(tuple(v.label), (v.recorded_at, v.event_id)), 1) AS label,
    any(g.gold_label) AS gold_label
FROM v_weak_votes AS v
LEFT JOIN gold AS g ON g.comment_id = v.comment_id
WHERE v.schema_version = {schema_version:String}
GROUP BY comment_id, lf
ORDER BY comment_id, lf
