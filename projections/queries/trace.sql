-- trace: every event about one comment, read from ClickHouse alone, in event time: its posting,
-- model score and route, tasks and their decomposition, assignments, each vote, every consensus
-- update (per-item agreement), adjudication request and verdict, committed labels with their
-- provenance. What the comment caused later (reliability updates, exports, models) is
-- trace_links, which takes its parameters from these rows (labeltrail audit trace runs both).
-- Parameters: comment_id String
-- Columns: occurred_at, recorded_at, event_type, producer, annotator_id, schema_version,
--          event_id, causation_id, payload (JSON of the event's fields), topic, partition,
--          offset, link
SELECT occurred_at, recorded_at, event_type, producer, annotator_id, schema_version,
       event_id, causation_id, payload, topic, partition, offset, '' AS link
FROM events FINAL
WHERE comment_id = {comment_id:String}
ORDER BY
    occurred_at,
    indexOf(['CommentPosted', 'CommentScored', 'TaskCreated', 'TaskAssigned', 'VoteCast',
             'HoneypotScored', 'ConsensusUpdated', 'AdjudicationRequested',
             'AdjudicationRecorded', 'LabelCommitted'], event_type),
    length(JSONExtract(payload, 'vote_ids', 'Array(String)')),
    recorded_at,
    event_id
