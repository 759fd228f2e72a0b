-- label_votes: each live label row (run_id = '') with the votes it names already resolved, for
-- `labeltrail relabel --source clickhouse` (projections/queries/relabel_label_votes.sql): one
-- narrow table, no join at read time. Filled by the writer after every batch that holds
-- labels or votes (clickhouse.relabel.fill_label_votes: the label rows of the batch's comments
-- re-resolved, so a vote projected after its label completes the row), by a rebuild the same
-- way, and once whole for a database made before it (the projector's start). A vote is its
-- first copy in log order; `named` counts the ids the label names, `resolved` those found.
-- A read uses it only when it holds every live label row before the positions the projection
-- covers, every chosen label's ids were all found, and no vote is past the votes topic's
-- covered positions (a batch written, its positions not yet recorded); otherwise it reads
-- labels and votes as before. `filled` (the fill's
-- time) keeps the latest resolution of a row.
CREATE TABLE IF NOT EXISTS label_votes
(
    topic           LowCardinality(String),
    partition       UInt32,
    offset          UInt64,
    schema_version  LowCardinality(String),
    comment_id      String,
    recorded_at     DateTime64(3, 'UTC'),
    occurred_at     DateTime64(3, 'UTC'),
    event_id        String,
    label           String,
    route           LowCardinality(String),
    method          LowCardinality(String),
    distribution    Array(Float64),
    named           UInt32,
    resolved        UInt32,
    vote_annotators Array(LowCardinality(String)),
    vote_labels     Array(LowCardinality(String)),
    filled          UInt64
)
ENGINE = ReplacingMergeTree(filled)
ORDER BY (topic, schema_version, comment_id, partition, offset);
