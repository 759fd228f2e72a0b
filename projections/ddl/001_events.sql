-- The raw log: every event as it was on the log, with its JSON payload (fields without the
-- envelope) and its position. Idempotent on event id: a replay or a re-emitted derived event
-- (same deterministic id) replaces, never duplicates; the copy kept is the earliest on the log
-- (replace_rank = 2^64-1-offset), so a live run and a rebuild keep the same row. Query with
-- FINAL. Sorted by comment first so that a comment's trace reads one range.
CREATE TABLE IF NOT EXISTS events
(
    event_id        String,
    topic           LowCardinality(String),
    partition       UInt32,
    offset          UInt64,
    replace_rank    UInt64,
    occurred_at     DateTime64(3, 'UTC'),
    recorded_at     DateTime64(3, 'UTC'),
    producer        LowCardinality(String),
    causation_id    String,
    correlation_id  String,
    event_type      LowCardinality(String),
    message_key     String,
    comment_id      String,
    annotator_id    String,
    schema_version  LowCardinality(String),
    payload         String,
    INDEX idx_annotator annotator_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_event_id event_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (comment_id, event_id)
-- erasable (docs/erasure.md): replaced parts are dropped within a second of an erasure
SETTINGS cleanup_delay_period = 1, cleanup_delay_period_random_add = 0;

-- Where the projector has read up to. A batch's position rows are inserted after every table
-- row of that batch, so a restart resumes at the first position not yet fully in ClickHouse;
-- a crash in between re-inserts that batch, which the ReplacingMergeTrees absorb.
CREATE TABLE IF NOT EXISTS consumer_positions
(
    consumer    LowCardinality(String),
    topic       LowCardinality(String),
    partition   UInt32,
    next_offset UInt64,
    updated_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(next_offset)
ORDER BY (consumer, topic, partition);
