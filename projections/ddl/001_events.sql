-- Every event, as it was on the log. Idempotent on event id: a replay or a re-emitted derived
-- event (same deterministic id) replaces, never duplicates. Query with FINAL.
-- Sorted by comment first so that a comment's trace reads one range.
CREATE TABLE IF NOT EXISTS events
(
    event_id        String,
    event_type      LowCardinality(String),
    topic           LowCardinality(String),
    partition       UInt16,
    offset          UInt64,
    message_key     String,
    comment_id      String,
    annotator_id    String,
    schema_version  LowCardinality(String),
    occurred_at     DateTime64(3, 'UTC'),
    recorded_at     DateTime64(3, 'UTC'),
    producer        LowCardinality(String),
    causation_id    String,
    correlation_id  String,
    payload         String,
    INDEX idx_annotator annotator_id TYPE bloom_filter GRANULARITY 4,
    INDEX idx_event_id event_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree
ORDER BY (comment_id, event_id);

-- Where the projector has read up to, written after the events of the same batch, so a
-- restart resumes exactly at the first position not yet in ClickHouse.
CREATE TABLE IF NOT EXISTS consumer_positions
(
    consumer    LowCardinality(String),
    topic       LowCardinality(String),
    partition   UInt16,
    next_offset UInt64,
    updated_at  DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(next_offset)
ORDER BY (consumer, topic, partition);
