-- trace as it was before the dedup by event id (it read events FINAL). Kept as the reference
-- its replacement must equal (tests/audit/test_trace.py) and as the peer of ops/bench/audit.py.
SELECT occurred_at, recorded_at, event_type, producer, annotator_id, schema_version,
       event_id, causation_id, payload, topic, partition, offset, '' AS link
FROM events FINAL
WHERE comment_id = {comment_id:String}
ORDER BY
    occurred_at,
    indexOf(['CommentPosted', 'CommentScored', 'TaskRequested', 'TaskCreated', 'TaskAssigned',
             'VoteCast', 'HoneypotScored', 'ConsensusUpdated', 'AdjudicationRequested',
             'AdjudicationRecorded', 'LabelCommitted'], event_type),
    length(JSONExtract(payload, 'vote_ids', 'Array(String)')),
    recorded_at,
    event_id
