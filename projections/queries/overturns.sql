-- overturns: the expert reviews production feedback opened (an appeal or a moderator override
-- that contradicted a live label: the feedback stage's AdjudicationRequested, request id
-- 'feedback:<feedback_id>', reason 'production_feedback') and how many overturned the label.
-- The contested label is the comment's latest live label (same schema version) recorded before
-- the request, i.e. the one the stage compared the feedback with; a review is decided once an
-- expert verdict answers its request (the latest verdict counts), upheld when the verdict keeps
-- the contested label, overturned when it changes it; pending until then.
-- Grouped by (parameter by):
--   'class'          the contested label's class
--   'slice'          the comment's attribute slice_key (comments' attributes)
--   'schema_version' the contested label's schema version
--   'annotator'      each annotator of the contested label (a review counts once for each;
--                    the crowd behind a consensus label, the reviewer behind a verdict)
--   'kind'           the feedback's kind (appeal, moderator_override) and actor kind
-- overturn_rate = overturned / decided (NULL while none is decided).
-- Parameters: by String, slice_key String
WITH reviews AS
(
    SELECT r.request_id AS request_id, r.comment_id AS comment_id,
           r.schema_version AS schema_version, r.recorded_at AS requested_at,
           f.kind AS kind, f.actor_kind AS actor_kind
    FROM (SELECT * FROM adjudication_requests FINAL
          WHERE reason = 'production_feedback' AND startsWith(request_id, 'feedback:')) AS r
    INNER JOIN (SELECT concat('feedback:', feedback_id) AS request_id, kind, actor_kind
                FROM feedback FINAL) AS f
        ON f.request_id = r.request_id
),
contested AS
(
    SELECT v.request_id AS request_id, v.comment_id AS comment_id,
           v.schema_version AS schema_version, v.kind AS kind, v.actor_kind AS actor_kind,
           l.label AS label, l.annotator_ids AS annotator_ids
    FROM reviews AS v
    INNER JOIN (SELECT comment_id, schema_version, label, annotator_ids, recorded_at, event_id
                FROM labels FINAL WHERE run_id = '') AS l
        ON l.comment_id = v.comment_id AND l.schema_version = v.schema_version
    WHERE l.recorded_at <= v.requested_at
    ORDER BY l.recorded_at DESC, l.event_id DESC
    LIMIT 1 BY v.request_id
),
verdicts AS
(
    SELECT request_id, argMax(label, (recorded_at, event_id)) AS verdict
    FROM adjudications FINAL
    WHERE startsWith(request_id, 'feedback:')
    GROUP BY request_id
),
outcomes AS
(
    SELECT c.*, d.request_id != '' AS is_decided,
           is_decided AND d.verdict != c.label AS is_overturned,
           s.attributes[{slice_key:String}] AS slice
    FROM contested AS c
    LEFT JOIN verdicts AS d ON d.request_id = c.request_id
    LEFT JOIN v_comment_slices AS s ON s.comment_id = c.comment_id
)
SELECT {by:String} AS by,
       key,
       count() AS reviews,
       countIf(is_decided) AS decided,
       countIf(is_decided AND NOT is_overturned) AS upheld,
       countIf(is_overturned) AS overturned,
       if(decided = 0, NULL, overturned / decided) AS overturn_rate,
       countIf(NOT is_decided) AS pending
FROM outcomes
ARRAY JOIN multiIf({by:String} = 'annotator', annotator_ids,
                   {by:String} = 'class', [label],
                   {by:String} = 'slice', [slice],
                   {by:String} = 'schema_version', [toString(schema_version)],
                   [concat(kind, ' by ', actor_kind)]) AS key
GROUP BY key
ORDER BY overturned DESC, reviews DESC, key
