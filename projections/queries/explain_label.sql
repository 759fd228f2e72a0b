-- explain_label: why a label is what it is: the committed label and its provenance, the
-- consensus over the same votes (method, parameters, posterior, per-item agreement, status),
-- the adjudication request (agreement against threshold) and verdict, and the gold verdict.
-- Parameters: label String (a label id, a LabelCommitted event id, or a comment id for its
--             latest label)
WITH target AS (
    SELECT *
    FROM labels FINAL
    WHERE label_id = {label:String} OR event_id = {label:String}
       OR (comment_id = {label:String} AND run_id = '')
    ORDER BY recorded_at DESC, occurred_at DESC, event_id DESC
    LIMIT 1
)
SELECT
    t.label_id AS label_id,
    t.event_id AS label_event_id,
    t.comment_id AS comment_id,
    t.schema_version AS schema_version,
    t.label AS label,
    t.route AS route,
    t.method AS method,
    t.method_params AS method_params,
    t.classes AS classes,
    t.distribution AS distribution,
    t.confidence AS confidence,
    t.recorded_at AS committed_at,
    t.source_positions AS source_positions,
    c.method AS consensus_method,
    c.method_params AS consensus_params,
    c.posterior AS consensus_posterior,
    c.label AS consensus_label,
    c.agreement AS agreement,
    c.status AS consensus_status,
    c.votes_expected AS votes_expected,
    r.threshold AS agreement_threshold,
    r.reason AS adjudication_reason,
    a.reviewer_id AS reviewer_id,
    a.label AS adjudicated_label,
    a.confidence AS adjudicated_confidence,
    a.note AS adjudication_note,
    g.gold_label AS gold_label
FROM target AS t
LEFT JOIN (
    SELECT * FROM consensus FINAL
    WHERE comment_id IN (SELECT comment_id FROM target)
) AS c
    ON c.comment_id = t.comment_id AND c.schema_version = t.schema_version
   AND arraySort(c.vote_ids) = arraySort(t.vote_ids)
LEFT JOIN (
    SELECT * FROM adjudication_requests FINAL
    WHERE comment_id IN (SELECT comment_id FROM target)
) AS r
    ON r.comment_id = t.comment_id AND r.schema_version = t.schema_version
   AND arraySort(r.vote_ids) = arraySort(t.vote_ids)
LEFT JOIN (
    SELECT * FROM adjudications FINAL
    WHERE comment_id IN (SELECT comment_id FROM target)
) AS a ON a.adjudication_id = t.adjudication_id
LEFT JOIN (
    SELECT comment_id, schema_version, gold_label FROM v_gold
    WHERE comment_id IN (SELECT comment_id FROM target)
) AS g ON g.comment_id = t.comment_id AND g.schema_version = t.schema_version
LIMIT 1
SETTINGS join_use_nulls = 1
