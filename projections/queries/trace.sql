-- trace: every event about one comment, read from ClickHouse alone, in event time: its posting,
-- model score and route, tasks and their decomposition, assignments, each vote, every consensus
-- update (per-item agreement), adjudication request and verdict, committed labels with their
-- provenance. What the comment caused later (reliability updates, exports, models) is
-- trace_links, which takes its parameters from these rows (labeltrail audit trace runs both).
-- Rows come in event time; labeltrail audit trace then moves any effect after its cause
-- (clickhouse.trace.causal_order): one instant can hold a vote, the consensus and adjudication
-- request it caused and the expert task they caused, and the type order cannot tell.
--
-- How it stays fast on millions of events: `events` is ordered by (comment_id, event_id), so
-- the comment's rows are one primary-key range. Each event is kept once by a dedup on its event
-- id in the query (the copy with the highest replace_rank, i.e. the earliest on the log: the
-- copy FINAL keeps), which filters on comment_id before reading the payload; FINAL reads and
-- merges the payload of every row in the matching granules first (about 1.5x the time).
-- One thread: a point lookup gains nothing from more, and a busy machine makes them wait.
-- Parameters: comment_id String
-- Columns: occurred_at, recorded_at, event_type, producer, annotator_id, schema_version,
--          event_id, causation_id, payload (JSON of the event's fields), topic, partition,
--          offset, link
SELECT occurred_at, recorded_at, event_type, producer, annotator_id, schema_version,
       event_id, causation_id, payload, topic, partition, offset, '' AS link
FROM
(
    SELECT *
    FROM events
    WHERE comment_id = {comment_id:String}
    ORDER BY event_id, replace_rank DESC
    LIMIT 1 BY event_id
)
ORDER BY
    occurred_at,
    indexOf(['CommentPosted', 'CommentScored', 'TaskRequested', 'TaskCreated', 'TaskAssigned',
             'VoteCast', 'HoneypotScored', 'ConsensusUpdated', 'AdjudicationRequested',
             'AdjudicationRecorded', 'LabelCommitted'], event_type),
    length(JSONExtract(payload, 'vote_ids', 'Array(String)')),
    recorded_at,
    event_id
SETTINGS max_threads = 1
