-- gold_candidates: items an expert adjudicated with a confident verdict, not yet in the gold
-- set: every live verdict for the (comment, schema version) agrees, the least confident is at
-- least min_confidence, and no gold verdict exists for it. `labeltrail gold candidates` lists
-- them; `labeltrail gold promote` copies the chosen ones into a gold set, which needs the
-- comment exactly as it was posted (its envelope and fields, from the raw events table).
-- Parameters: min_confidence Float64; comment_ids Array(String) (empty: every candidate)
-- Columns: comment_id, schema_version, label, confidence, reviewer_id, adjudicated_at,
--          verdicts, adjudication_event_id, text, comment_event_id, comment_occurred_at,
--          comment_recorded_at, comment_producer, comment_causation_id,
--          comment_correlation_id, comment_payload
WITH
    verdicts AS (
        SELECT comment_id, schema_version,
               argMax(label, (recorded_at, event_id)) AS latest_label,
               min(confidence) AS least_confidence,
               argMax(reviewer_id, (recorded_at, event_id)) AS latest_reviewer,
               max(occurred_at) AS adjudicated_at,
               count() AS verdicts,
               uniqExact(label) AS labels,
               argMax(event_id, (recorded_at, event_id)) AS adjudication_event_id
        FROM adjudications FINAL
        WHERE NOT is_gold
          AND (empty({comment_ids:Array(String)}) OR has({comment_ids:Array(String)}, comment_id))
        GROUP BY comment_id, schema_version
    ),
    gold AS (
        SELECT DISTINCT comment_id, schema_version
        FROM adjudications FINAL
        WHERE is_gold
    ),
    posted AS (
        -- the first posting stands (tasking refuses another content under the same id)
        SELECT comment_id,
               argMin(event_id, (recorded_at, event_id)) AS comment_event_id,
               argMin(occurred_at, (recorded_at, event_id)) AS comment_occurred_at,
               min(recorded_at) AS comment_recorded_at,
               argMin(producer, (recorded_at, event_id)) AS comment_producer,
               argMin(causation_id, (recorded_at, event_id)) AS comment_causation_id,
               argMin(correlation_id, (recorded_at, event_id)) AS comment_correlation_id,
               argMin(payload, (recorded_at, event_id)) AS comment_payload
        FROM events FINAL
        WHERE event_type = 'CommentPosted'
          AND comment_id IN (SELECT comment_id FROM verdicts)
        GROUP BY comment_id
    )
SELECT v.comment_id AS comment_id, v.schema_version AS schema_version, v.latest_label AS label,
       v.least_confidence AS confidence, v.latest_reviewer AS reviewer_id,
       v.adjudicated_at AS adjudicated_at, v.verdicts AS verdicts,
       v.adjudication_event_id AS adjudication_event_id,
       JSONExtractString(p.comment_payload, 'text') AS text,
       p.comment_event_id AS comment_event_id, p.comment_occurred_at AS comment_occurred_at,
       p.comment_recorded_at AS comment_recorded_at, p.comment_producer AS comment_producer,
       p.comment_causation_id AS comment_causation_id,
       p.comment_correlation_id AS comment_correlation_id,
       p.comment_payload AS comment_payload
FROM verdicts AS v
INNER JOIN posted AS p ON p.comment_id = v.comment_id
LEFT ANTI JOIN gold AS g ON g.comment_id = v.comment_id AND g.schema_version = v.schema_version
WHERE v.labels = 1 AND v.least_confidence >= {min_confidence:Float64}
ORDER BY v.adjudicated_at, v.comment_id, v.schema_version
