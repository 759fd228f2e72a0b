-- Typed views over the raw events, for auditors' own SQL.
CREATE VIEW IF NOT EXISTS v_votes AS
SELECT
    event_id,
    JSONExtractString(payload, 'vote_id') AS vote_id,
    JSONExtractString(payload, 'task_id') AS task_id,
    comment_id,
    annotator_id,
    schema_version,
    JSONExtractString(payload, 'label') AS label,
    JSONExtract(payload, 'confidence', 'Nullable(Float64)') AS confidence,
    JSONExtractUInt(payload, 'time_spent_ms') AS time_spent_ms,
    JSONExtractBool(payload, 'prelabel_shown') AS prelabel_shown,
    occurred_at
FROM events FINAL
WHERE event_type = 'VoteCast';

CREATE VIEW IF NOT EXISTS v_labels AS
SELECT
    event_id,
    JSONExtractString(payload, 'label_id') AS label_id,
    comment_id,
    schema_version,
    JSONExtractString(payload, 'label') AS label,
    JSONExtractFloat(payload, 'confidence') AS confidence,
    JSONExtractString(payload, 'route') AS route,
    JSONExtractString(payload, 'method') AS method,
    JSONExtract(payload, 'classes', 'Array(String)') AS classes,
    JSONExtract(payload, 'distribution', 'Array(Float64)') AS distribution,
    JSONExtract(payload, 'vote_ids', 'Array(String)') AS vote_ids,
    JSONExtract(payload, 'annotator_ids', 'Array(String)') AS annotator_ids,
    JSONExtract(payload, 'adjudication_id', 'Nullable(String)') AS adjudication_id,
    occurred_at,
    recorded_at
FROM events FINAL
WHERE event_type = 'LabelCommitted';

CREATE VIEW IF NOT EXISTS v_tasks AS
SELECT
    event_id,
    JSONExtractString(payload, 'task_id') AS task_id,
    comment_id,
    schema_version,
    JSONExtractString(payload, 'kind') AS kind,
    JSONExtractString(payload, 'reason') AS reason,
    JSONExtractUInt(payload, 'redundancy') AS redundancy,
    occurred_at
FROM events FINAL
WHERE event_type = 'TaskCreated';

CREATE VIEW IF NOT EXISTS v_assignments AS
SELECT
    event_id,
    JSONExtractString(payload, 'task_id') AS task_id,
    comment_id,
    annotator_id,
    JSONExtractString(payload, 'pool') AS pool,
    JSONExtractFloat(payload, 'cost_usd') AS cost_usd,
    occurred_at
FROM events FINAL
WHERE event_type = 'TaskAssigned';

CREATE VIEW IF NOT EXISTS v_dead_letters AS
SELECT
    event_id,
    JSONExtractString(payload, 'source_topic') AS source_topic,
    JSONExtractInt(payload, 'source_partition') AS source_partition,
    JSONExtractInt(payload, 'source_offset') AS source_offset,
    JSONExtractString(payload, 'reason_code') AS reason_code,
    JSONExtractString(payload, 'reason') AS reason,
    JSONExtractString(payload, 'stage') AS stage,
    recorded_at
FROM events FINAL
WHERE event_type = 'DeadLettered';
