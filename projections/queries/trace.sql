-- trace: the full trace of one comment, read from ClickHouse alone, in event time: its posting,
-- model score and route, tasks and their decomposition, assignments, each vote, every consensus
-- update (per-item agreement), adjudication request and verdict, committed labels with their
-- provenance; then what it caused: the reliability updates of the annotators who voted on it
-- (linked by causation, or by a reliability window that covers their vote), the exports that
-- included its label and the models trained on those exports.
-- Parameters: comment_id String
-- Columns: occurred_at, recorded_at, event_type, producer, annotator_id, schema_version,
--          event_id, causation_id, payload (JSON of the event's fields), link
WITH
    own AS (SELECT event_id FROM events FINAL WHERE comment_id = {comment_id:String}),
    voted AS (
        SELECT annotator_id, min(occurred_at) AS first_at, max(occurred_at) AS last_at
        FROM (
            SELECT annotator_id, occurred_at FROM votes FINAL
            WHERE comment_id = {comment_id:String}
            UNION ALL
            SELECT reviewer_id AS annotator_id, occurred_at FROM adjudications FINAL
            WHERE comment_id = {comment_id:String}
        )
        GROUP BY annotator_id
    ),
    used_by AS (
        SELECT x.event_id AS event_id, x.export_id AS export_id
        FROM (SELECT * FROM labels FINAL WHERE comment_id = {comment_id:String}) AS l
        CROSS JOIN (SELECT * FROM exports FINAL) AS x
        WHERE l.schema_version = x.schema_version
          AND l.recorded_at <= x.as_of
          AND arrayExists(
                p -> p.topic = l.topic AND p.partition = l.partition AND l.offset < p.offset,
                x.log_positions)
    ),
    linked AS (
        SELECT r.event_id AS event_id,
               if(r.causation_id IN own, 'caused by this comment',
                  'reliability window covers its vote') AS link
        FROM (SELECT * FROM reliability FINAL) AS r
        INNER JOIN voted AS v ON r.annotator_id = v.annotator_id
        WHERE r.causation_id IN own
           OR (r.window_start IS NOT NULL AND r.window_end IS NOT NULL
               AND r.window_start <= v.last_at AND v.first_at < r.window_end)
        UNION ALL
        SELECT event_id, 'export includes its label' AS link FROM used_by
        UNION ALL
        SELECT event_id, concat('trained on export ', export_id) AS link FROM models FINAL
        WHERE export_id IN (SELECT export_id FROM used_by)
    )
SELECT occurred_at, recorded_at, event_type, producer, annotator_id, schema_version,
       event_id, causation_id, payload, link
FROM (
    SELECT occurred_at, recorded_at, event_type, producer, annotator_id, schema_version,
           event_id, causation_id, payload, '' AS link
    FROM events FINAL
    WHERE comment_id = {comment_id:String}
    UNION ALL
    SELECT e.occurred_at, e.recorded_at, e.event_type, e.producer, e.annotator_id,
           e.schema_version, e.event_id, e.causation_id, e.payload, any(k.link) AS link
    FROM (SELECT * FROM events FINAL
          WHERE comment_id = '' AND event_id IN (SELECT event_id FROM linked)) AS e
    INNER JOIN linked AS k ON e.event_id = k.event_id
    GROUP BY e.occurred_at, e.recorded_at, e.event_type, e.producer, e.annotator_id,
             e.schema_version, e.event_id, e.causation_id, e.payload
)
ORDER BY
    occurred_at,
    indexOf(['CommentPosted', 'CommentScored', 'TaskCreated', 'TaskAssigned', 'VoteCast',
             'HoneypotScored', 'ConsensusUpdated', 'AdjudicationRequested',
             'AdjudicationRecorded', 'LabelCommitted', 'AnnotatorReliabilityUpdated',
             'ExportCreated', 'ModelPublished'], event_type),
    length(JSONExtract(payload, 'vote_ids', 'Array(String)')),
    recorded_at,
    event_id
