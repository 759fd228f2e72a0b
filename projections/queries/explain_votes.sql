-- explain_votes: the votes behind a label, each with its annotator, answer, confidence, the
-- atomic answers, and the annotator's reliability as it stood when the label was committed
-- (the weight a reliability-weighted method would give it; majority vote weighs every vote 1).
-- Parameters: label String (as in explain_label)
WITH target AS (
    SELECT *
    FROM labels FINAL
    WHERE label_id = {label:String} OR event_id = {label:String}
       OR (comment_id = {label:String} AND run_id = '')
    ORDER BY recorded_at DESC, occurred_at DESC, event_id DESC
    LIMIT 1
)
SELECT
    v.vote_id AS vote_id,
    v.annotator_id AS annotator_id,
    v.label AS vote_label,
    v.confidence AS confidence,
    v.answers AS answers,
    v.time_spent_ms AS time_spent_ms,
    v.prelabel_shown AS prelabel_shown,
    v.occurred_at AS voted_at,
    v.label = (SELECT label FROM target) AS agrees_with_label,
    if(has(['mv', 'majority'], (SELECT method FROM target)), 1.0, rel.accuracy) AS weight,
    rel.accuracy AS reliability_then,
    rel.method AS reliability_method
FROM (
    SELECT * FROM votes FINAL
    WHERE comment_id IN (SELECT comment_id FROM target)
      AND has((SELECT vote_ids FROM target), vote_id)
) AS v
LEFT JOIN (
    SELECT annotator_id,
           argMax(accuracy, (recorded_at, event_id)) AS accuracy,
           argMax(method, (recorded_at, event_id)) AS method
    FROM reliability FINAL
    WHERE recorded_at <= (SELECT recorded_at FROM target)
      AND schema_version = (SELECT schema_version FROM target)
    GROUP BY annotator_id
) AS rel ON rel.annotator_id = v.annotator_id
ORDER BY voted_at, annotator_id
SETTINGS join_use_nulls = 1
