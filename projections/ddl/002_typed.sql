-- Typed tables: one per event type, filled by the projector from the same batch as the raw
-- events table. Each starts with the envelope and the log position; ReplacingMergeTree on
-- replace_rank (earliest copy on the log wins) with event_id in the key. Query with FINAL or
-- through the v_* views. Column lists are kept in step with src/labeltrail/clickhouse/tables.py.

-- CommentPosted (erasable: labeltrail erase re-projects its rows and has ClickHouse drop the
-- replaced parts at once, so the cleanup thread runs every second; docs/erasure.md)
CREATE TABLE IF NOT EXISTS comments
(
    event_id       String,
    topic          LowCardinality(String),
    partition      UInt32,
    offset         UInt64,
    replace_rank   UInt64,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(3, 'UTC'),
    producer       LowCardinality(String),
    causation_id   String,
    correlation_id String,
    comment_id     String,
    video_id       String,
    author_hash    String,
    text           String,
    posted_at      DateTime64(3, 'UTC'),
    source         LowCardinality(String),
    parent_ids     Array(String),
    attributes     Map(String, String)
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (comment_id, event_id)
SETTINGS cleanup_delay_period = 1, cleanup_delay_period_random_add = 0;

-- LabelSchemaPublished
CREATE TABLE IF NOT EXISTS label_schemas
(
    event_id         String,
    topic            LowCardinality(String),
    partition        UInt32,
    offset           UInt64,
    replace_rank     UInt64,
    occurred_at      DateTime64(3, 'UTC'),
    recorded_at      DateTime64(3, 'UTC'),
    producer         LowCardinality(String),
    causation_id     String,
    correlation_id   String,
    version          String,
    classes          Array(String),
    question_ids     Array(String),
    question_texts   Array(String),
    guideline_hash   String,
    supersedes       Nullable(String),
    old_label_policy LowCardinality(String),
    relabel_classes  Array(String)
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (version, event_id);

-- CommentScored
CREATE TABLE IF NOT EXISTS scores
(
    event_id       String,
    topic          LowCardinality(String),
    partition      UInt32,
    offset         UInt64,
    replace_rank   UInt64,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(3, 'UTC'),
    producer       LowCardinality(String),
    causation_id   String,
    correlation_id String,
    comment_id     String,
    model_version  LowCardinality(String),
    classes        Array(String),
    probabilities  Array(Float64),
    margin         Float64,
    route          LowCardinality(String),
    threshold      Float64,
    temperature    Nullable(Float64),
    confidence     Nullable(Float64)
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (comment_id, event_id);

-- CommentScored v2 (a database made before it): the model's calibration map and the
-- calibrated top probability that gated auto-accept.
ALTER TABLE scores ADD COLUMN IF NOT EXISTS temperature Nullable(Float64) AFTER threshold;
ALTER TABLE scores ADD COLUMN IF NOT EXISTS confidence Nullable(Float64) AFTER temperature;

-- TaskCreated
CREATE TABLE IF NOT EXISTS tasks
(
    event_id            String,
    topic               LowCardinality(String),
    partition           UInt32,
    offset              UInt64,
    replace_rank        UInt64,
    occurred_at         DateTime64(3, 'UTC'),
    recorded_at         DateTime64(3, 'UTC'),
    producer            LowCardinality(String),
    causation_id        String,
    correlation_id      String,
    task_id             String,
    comment_id          String,
    schema_version      LowCardinality(String),
    kind                LowCardinality(String),
    reason              LowCardinality(String),
    questions           Array(String),
    redundancy          UInt32,
    prelabel            Nullable(String),
    prelabel_confidence Nullable(Float64),
    expected_label      Nullable(String),
    request_id          Nullable(String)
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (comment_id, event_id);

-- TaskRequested: what active learning sampled for labelling, with its strategy and value
-- (folds/active.py); tasking makes a crowd task of each (tasks.request_id).
CREATE TABLE IF NOT EXISTS task_requests
(
    event_id       String,
    topic          LowCardinality(String),
    partition      UInt32,
    offset         UInt64,
    replace_rank   UInt64,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(3, 'UTC'),
    producer       LowCardinality(String),
    causation_id   String,
    correlation_id String,
    request_id     String,
    comment_id     String,
    reason         LowCardinality(String),
    strategy       LowCardinality(String),
    score          Float64,
    rank           UInt32,
    batch_id       String,
    batch_size     UInt32,
    trigger        LowCardinality(String),
    model_versions Array(String),
    diversity      Float64,
    cost_usd       Float64
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (comment_id, event_id);

-- TaskAssigned
CREATE TABLE IF NOT EXISTS assignments
(
    event_id            String,
    topic               LowCardinality(String),
    partition           UInt32,
    offset              UInt64,
    replace_rank        UInt64,
    occurred_at         DateTime64(3, 'UTC'),
    recorded_at         DateTime64(3, 'UTC'),
    producer            LowCardinality(String),
    causation_id        String,
    correlation_id      String,
    assignment_id       String,
    task_id             String,
    comment_id          String,
    annotator_id        String,
    pool                LowCardinality(String),
    schema_version      LowCardinality(String),
    questions           Array(String),
    context             Array(String),
    prelabel            Nullable(String),
    prelabel_confidence Nullable(Float64),
    prior_votes         Array(String),
    request_id          Nullable(String),
    cost_usd            Float64
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (comment_id, event_id)
SETTINGS cleanup_delay_period = 1, cleanup_delay_period_random_add = 0;

-- VoteCast
CREATE TABLE IF NOT EXISTS votes
(
    event_id       String,
    topic          LowCardinality(String),
    partition      UInt32,
    offset         UInt64,
    replace_rank   UInt64,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(3, 'UTC'),
    producer       LowCardinality(String),
    causation_id   String,
    correlation_id String,
    vote_id        String,
    task_id        String,
    comment_id     String,
    annotator_id   String,
    schema_version LowCardinality(String),
    label          String,
    answers        Map(String, String),
    confidence     Nullable(Float64),
    time_spent_ms  UInt64,
    prelabel_shown Bool
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (comment_id, event_id);

-- ConsensusUpdated
CREATE TABLE IF NOT EXISTS consensus
(
    event_id       String,
    topic          LowCardinality(String),
    partition      UInt32,
    offset         UInt64,
    replace_rank   UInt64,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(3, 'UTC'),
    producer       LowCardinality(String),
    causation_id   String,
    correlation_id String,
    comment_id     String,
    schema_version LowCardinality(String),
    method         LowCardinality(String),
    method_params  Map(String, String),
    classes        Array(String),
    posterior      Array(Float64),
    label          String,
    agreement      Float64,
    vote_ids       Array(String),
    annotator_ids  Array(String),
    votes_expected UInt32,
    status         LowCardinality(String)
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (comment_id, event_id);

-- AdjudicationRequested
CREATE TABLE IF NOT EXISTS adjudication_requests
(
    event_id       String,
    topic          LowCardinality(String),
    partition      UInt32,
    offset         UInt64,
    replace_rank   UInt64,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(3, 'UTC'),
    producer       LowCardinality(String),
    causation_id   String,
    correlation_id String,
    request_id     String,
    comment_id     String,
    schema_version LowCardinality(String),
    reason         LowCardinality(String),
    agreement      Float64,
    threshold      Float64,
    vote_ids       Array(String)
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (comment_id, event_id);

-- AdjudicationRecorded
CREATE TABLE IF NOT EXISTS adjudications
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
    adjudication_id String,
    request_id      String,
    task_id         String,
    comment_id      String,
    schema_version  LowCardinality(String),
    reviewer_id     String,
    label           String,
    confidence      Float64,
    note            String,
    context_seen    Array(String),
    is_gold         Bool
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (comment_id, event_id);

-- LabelCommitted. Ordered by (comment, version) first so that label-as-of reads each
-- (comment, schema version) partition in order; an event has one version, so the key still
-- deduplicates on event id.
CREATE TABLE IF NOT EXISTS labels
(
    event_id         String,
    topic            LowCardinality(String),
    partition        UInt32,
    offset           UInt64,
    replace_rank     UInt64,
    occurred_at      DateTime64(3, 'UTC'),
    recorded_at      DateTime64(3, 'UTC'),
    producer         LowCardinality(String),
    causation_id     String,
    correlation_id   String,
    label_id         String,
    comment_id       String,
    schema_version   LowCardinality(String),
    label            String,
    classes          Array(String),
    distribution     Array(Float64),
    confidence       Float64,
    route            LowCardinality(String),
    method           LowCardinality(String),
    method_params    Map(String, String),
    vote_ids         Array(String),
    annotator_ids    Array(String),
    adjudication_id  Nullable(String),
    machine_made     Bool,
    gold_label       Nullable(String),
    source_positions Array(Tuple(topic String, partition UInt32, offset UInt64)),
    run_id           String
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (comment_id, schema_version, event_id);

-- LabelCommitted v2 (a database made before it): the labeling run ('' for the live labels;
-- a run's labels come from the relabels topic, labeltrail relabel). Every query of the live
-- labels reads run_id = ''.
ALTER TABLE labels ADD COLUMN IF NOT EXISTS run_id String AFTER source_positions;

-- QuestionLabelCommitted: one atomic question's consensus for a complete item, with its own
-- agreement (folds/questions.py).
CREATE TABLE IF NOT EXISTS question_labels
(
    event_id       String,
    topic          LowCardinality(String),
    partition      UInt32,
    offset         UInt64,
    replace_rank   UInt64,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(3, 'UTC'),
    producer       LowCardinality(String),
    causation_id   String,
    correlation_id String,
    label_id       String,
    comment_id     String,
    schema_version LowCardinality(String),
    question_id    LowCardinality(String),
    answer         String,
    answers        Array(String),
    distribution   Array(Float64),
    agreement      Float64,
    method         LowCardinality(String),
    vote_ids       Array(String),
    annotator_ids  Array(String),
    consensus_id   String
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (comment_id, schema_version, question_id, event_id);

-- WeakVoteCast: a labeling function's vote on a comment (the lf stage), label NULL when it
-- abstained; read by `labeltrail lf analyze --from clickhouse`.
CREATE TABLE IF NOT EXISTS weak_votes
(
    event_id       String,
    topic          LowCardinality(String),
    partition      UInt32,
    offset         UInt64,
    replace_rank   UInt64,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(3, 'UTC'),
    producer       LowCardinality(String),
    causation_id   String,
    correlation_id String,
    vote_id        String,
    comment_id     String,
    schema_version LowCardinality(String),
    source         LowCardinality(String),
    source_name    LowCardinality(String),
    source_version LowCardinality(String),
    label          Nullable(String)
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (schema_version, source_name, source_version, comment_id, event_id);

-- HoneypotScored
CREATE TABLE IF NOT EXISTS honeypot_results
(
    event_id       String,
    topic          LowCardinality(String),
    partition      UInt32,
    offset         UInt64,
    replace_rank   UInt64,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(3, 'UTC'),
    producer       LowCardinality(String),
    causation_id   String,
    correlation_id String,
    annotator_id   String,
    task_id        String,
    vote_id        String,
    comment_id     String,
    schema_version LowCardinality(String),
    source         LowCardinality(String),
    expected_label String,
    given_label    String,
    correct        Bool
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (annotator_id, event_id);

-- AnnotatorReliabilityUpdated
CREATE TABLE IF NOT EXISTS reliability
(
    event_id          String,
    topic             LowCardinality(String),
    partition         UInt32,
    offset            UInt64,
    replace_rank      UInt64,
    occurred_at       DateTime64(3, 'UTC'),
    recorded_at       DateTime64(3, 'UTC'),
    producer          LowCardinality(String),
    causation_id      String,
    correlation_id    String,
    annotator_id      String,
    schema_version    LowCardinality(String),
    method            LowCardinality(String),
    accuracy          Float64,
    accuracy_lower    Float64,
    accuracy_upper    Float64,
    previous_accuracy Nullable(Float64),
    n_observations    UInt64,
    classes           Array(String),
    confusion         Array(Array(Float64)),
    window_start      Nullable(DateTime64(3, 'UTC')),
    window_end        Nullable(DateTime64(3, 'UTC'))
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (annotator_id, event_id);

-- CalibrationFitted: the consensus confidence's calibration maps; a label names the one it
-- was gated with in method_params['calibration'] (docs/quality.md, "Calibrated confidence")
CREATE TABLE IF NOT EXISTS calibrations
(
    event_id              String,
    topic                 LowCardinality(String),
    partition             UInt32,
    offset                UInt64,
    replace_rank          UInt64,
    occurred_at           DateTime64(3, 'UTC'),
    recorded_at           DateTime64(3, 'UTC'),
    producer              LowCardinality(String),
    causation_id          String,
    correlation_id        String,
    schema_version        LowCardinality(String),
    method                LowCardinality(String),
    temperature           Float64,
    classes               Array(String),
    n_gold                UInt64,
    ece_before            Float64,
    ece_after             Float64,
    bin_count_before      Array(UInt64),
    bin_confidence_before Array(Float64),
    bin_accuracy_before   Array(Float64),
    bin_count_after       Array(UInt64),
    bin_confidence_after  Array(Float64),
    bin_accuracy_after    Array(Float64),
    consensus_ids         Array(String),
    window_end            DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (schema_version, event_id);

-- IaaWindowClosed
CREATE TABLE IF NOT EXISTS iaa_windows
(
    event_id       String,
    topic          LowCardinality(String),
    partition      UInt32,
    offset         UInt64,
    replace_rank   UInt64,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(3, 'UTC'),
    producer       LowCardinality(String),
    causation_id   String,
    correlation_id String,
    window         LowCardinality(String),
    window_start   DateTime64(3, 'UTC'),
    window_end     DateTime64(3, 'UTC'),
    schema_version LowCardinality(String),
    question       String,
    slice          String,
    metric         LowCardinality(String),
    agreement      Nullable(Float64),
    gold_accuracy  Nullable(Float64),
    n_items        UInt64,
    n_gold_items   UInt64,
    blind_spot     Bool
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (slice, event_id);

-- FeedbackReceived
CREATE TABLE IF NOT EXISTS feedback
(
    event_id       String,
    topic          LowCardinality(String),
    partition      UInt32,
    offset         UInt64,
    replace_rank   UInt64,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(3, 'UTC'),
    producer       LowCardinality(String),
    causation_id   String,
    correlation_id String,
    feedback_id    String,
    comment_id     String,
    kind           LowCardinality(String),
    label          Nullable(String),
    actor_hash     String,
    actor_kind     LowCardinality(String),
    note           String
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (comment_id, event_id);

-- FeedbackReceived v2 (a database made before it): who gave the feedback and why.
ALTER TABLE feedback ADD COLUMN IF NOT EXISTS actor_kind LowCardinality(String) AFTER actor_hash;
ALTER TABLE feedback ADD COLUMN IF NOT EXISTS note String AFTER actor_kind;

-- ModelPublished
CREATE TABLE IF NOT EXISTS models
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
    model_version   LowCardinality(String),
    artifact_uri    String,
    artifact_sha256 String,
    classes         Array(String),
    export_id       Nullable(String),
    export_hash     Nullable(String),
    metrics         Map(String, Float64),
    schema_version   Nullable(String),
    baseline_version Nullable(String),
    forced           Bool,
    force_reason     String,
    temperature      Nullable(Float64)
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (model_version, event_id);

-- ModelPublished v2 (a database made before it): the schema version, the gate's baseline,
-- whether the gate was overridden and why.
ALTER TABLE models ADD COLUMN IF NOT EXISTS schema_version Nullable(String) AFTER metrics;
ALTER TABLE models ADD COLUMN IF NOT EXISTS baseline_version Nullable(String) AFTER schema_version;
ALTER TABLE models ADD COLUMN IF NOT EXISTS forced Bool AFTER baseline_version;
ALTER TABLE models ADD COLUMN IF NOT EXISTS force_reason String AFTER forced;
-- ModelPublished v3: the temperature fitted on the model's gold scores (auto-accept's map).
ALTER TABLE models ADD COLUMN IF NOT EXISTS temperature Nullable(Float64) AFTER force_reason;

-- ModelRefused
CREATE TABLE IF NOT EXISTS model_refusals
(
    event_id         String,
    topic            LowCardinality(String),
    partition        UInt32,
    offset           UInt64,
    replace_rank     UInt64,
    occurred_at      DateTime64(3, 'UTC'),
    recorded_at      DateTime64(3, 'UTC'),
    producer         LowCardinality(String),
    causation_id     String,
    correlation_id   String,
    model_version    LowCardinality(String),
    artifact_sha256  String,
    classes          Array(String),
    schema_version   Nullable(String),
    export_id        Nullable(String),
    baseline_version Nullable(String),
    tolerance        Float64,
    worse_slices     Array(String),
    reason           String,
    metrics          Map(String, Float64)
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (model_version, event_id);

-- ExportCreated
CREATE TABLE IF NOT EXISTS exports
(
    event_id          String,
    topic             LowCardinality(String),
    partition         UInt32,
    offset            UInt64,
    replace_rank      UInt64,
    occurred_at       DateTime64(3, 'UTC'),
    recorded_at       DateTime64(3, 'UTC'),
    producer          LowCardinality(String),
    causation_id      String,
    correlation_id    String,
    export_id         String,
    schema_version    LowCardinality(String),
    as_of             DateTime64(3, 'UTC'),
    log_positions     Array(Tuple(topic String, partition UInt32, offset UInt64)),
    aggregator        String,
    aggregator_params Map(String, String),
    content_hash      String,
    row_count         UInt64,
    uri               String,
    manifest_hash     String
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (export_id, event_id);

-- ExportCreated v2 (a database made before it): the manifest's hash.
ALTER TABLE exports ADD COLUMN IF NOT EXISTS manifest_hash String AFTER uri;

-- AnnotatorRegistered
CREATE TABLE IF NOT EXISTS annotators
(
    event_id       String,
    topic          LowCardinality(String),
    partition      UInt32,
    offset         UInt64,
    replace_rank   UInt64,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(3, 'UTC'),
    producer       LowCardinality(String),
    causation_id   String,
    correlation_id String,
    annotator_id   String,
    pool           LowCardinality(String),
    locale         LowCardinality(String),
    languages      Array(String),
    consented      Bool,
    demographics   Map(String, String)
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (annotator_id, event_id);

-- AnnotatorSuspended
CREATE TABLE IF NOT EXISTS annotator_suspensions
(
    event_id       String,
    topic          LowCardinality(String),
    partition      UInt32,
    offset         UInt64,
    replace_rank   UInt64,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(3, 'UTC'),
    producer       LowCardinality(String),
    causation_id   String,
    correlation_id String,
    annotator_id   String,
    reason         String,
    actor          String,
    evidence       Map(String, String)
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (annotator_id, event_id);

-- AnnotatorReinstated
CREATE TABLE IF NOT EXISTS annotator_reinstatements
(
    event_id       String,
    topic          LowCardinality(String),
    partition      UInt32,
    offset         UInt64,
    replace_rank   UInt64,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(3, 'UTC'),
    producer       LowCardinality(String),
    causation_id   String,
    correlation_id String,
    annotator_id   String,
    reason         String,
    actor          String,
    evidence       Map(String, String)
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (annotator_id, event_id);

-- DeadLettered
CREATE TABLE IF NOT EXISTS dead_letters
(
    event_id         String,
    topic            LowCardinality(String),
    partition        UInt32,
    offset           UInt64,
    replace_rank     UInt64,
    occurred_at      DateTime64(3, 'UTC'),
    recorded_at      DateTime64(3, 'UTC'),
    producer         LowCardinality(String),
    causation_id     String,
    correlation_id   String,
    source_topic     String,
    source_partition Int64,
    source_offset    Int64,
    reason_code      LowCardinality(String),
    reason           LowCardinality(String),
    stage            LowCardinality(String),
    source_key_hex   String,
    payload_hex      String,
    payload_size      Int64,
    payload_sha256    String,
    payload_truncated Bool
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (source_topic, event_id);

-- DeadLettered v2 (a database made before it): the size, hash and truncation of the payload.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS payload_size Int64 AFTER payload_hex;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS payload_sha256 String AFTER payload_size;
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS payload_truncated Bool AFTER payload_sha256;

-- CommentsErased: who erased which comments, and which data keys were destroyed (no author).
CREATE TABLE IF NOT EXISTS erasures
(
    event_id       String,
    topic          LowCardinality(String),
    partition      UInt32,
    offset         UInt64,
    replace_rank   UInt64,
    occurred_at    DateTime64(3, 'UTC'),
    recorded_at    DateTime64(3, 'UTC'),
    producer       LowCardinality(String),
    causation_id   String,
    correlation_id String,
    erasure_id     String,
    subject        LowCardinality(String),
    comment_ids    Array(String),
    key_ids        Array(String),
    actor          String,
    reason         String
)
ENGINE = ReplacingMergeTree(replace_rank)
ORDER BY (erasure_id, event_id);
