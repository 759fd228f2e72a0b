-- label_as_of: every label as it stood at a point in time: for each (comment, schema version)
-- the latest LabelCommitted by then. Two clocks (parameter time):
--   'recorded': recorded_at <= at (when the system knew the label: what an export made at that
--     time could see); ties broken by occurred_at, then event id.
--   'event': occurred_at <= at (when the label's event happened: the time audit trace shows),
--     knowing everything recorded since; ties broken by recorded_at, then event id.
-- Versions never mix: one row per version unless one is chosen. labels_so_far counts the
-- labels by then for that (comment, version), each event once (FINAL: a replayed copy of an
-- event is not a second label). superseded_by names a later schema version already published
-- by then (on the same clock), with its policy.
--
-- How it stays fast at 800,000 labels: the latest label is picked with window functions over
-- the (comment, version) partition (the row whose (recorded_at, occurred_at, event_id) is the
-- partition's maximum, and the partition's row count), so the wide columns (classes,
-- distribution, annotators) are read once and only filtered, never packed into an argMax tuple
-- or sorted as a whole; `labels` is ordered by (comment_id, schema_version, event_id), so the
-- partitions are read in order and need no sort (databases created before that order still
-- answer the same, only slower). The superseding schema is looked up in a small array
-- instead of a join the wide rows would have to pass through.
-- Rows come unordered (sorting 800,000 wide rows costs about as much as the query): sort where
-- the rows are used. labeltrail audit label-as-of sorts the Arrow table for its table output;
-- its --json and --out wrap this query in ORDER BY comment_id, schema_version and let
-- ClickHouse write the sorted rows itself (far cheaper than Python rows).
-- Parameters: comment_id String ('' for every comment), at DateTime64(3, 'UTC'),
--             schema_version String ('' for every version), time String ('recorded' or
--             'event'); with run String (a labeling run's id), that run's labels instead of
--             the live pipeline's (clickhouse.client.LIVE_LABELS)
WITH
    (
        SELECT (groupArray(supersedes), groupArray(version), groupArray(old_label_policy))
        FROM
        (
            SELECT assumeNotNull(supersedes) AS supersedes,
                   argMax(version, if({time:String} = 'event', occurred_at, recorded_at))
                       AS version,
                   argMax(old_label_policy,
                          if({time:String} = 'event', occurred_at, recorded_at))
                       AS old_label_policy
            FROM label_schemas FINAL
            WHERE if({time:String} = 'event', occurred_at, recorded_at)
                      <= {at:DateTime64(3, 'UTC')}
              AND supersedes IS NOT NULL
            GROUP BY supersedes
        )
    ) AS superseding,
    indexOf(superseding.1, schema_version) AS superseding_index
SELECT
    comment_id,
    schema_version,
    label,
    confidence,
    route,
    method,
    classes,
    distribution,
    label_id,
    event_id AS label_event_id,
    recorded_at AS committed_at,
    annotator_ids,
    adjudication_id,
    labels_so_far,
    if(superseding_index = 0, NULL, superseding.2[superseding_index]) AS superseded_by,
    if(superseding_index = 0, NULL, superseding.3[superseding_index]) AS supersede_policy
FROM
(
    SELECT
        comment_id,
        schema_version,
        label,
        confidence,
        route,
        method,
        classes,
        distribution,
        label_id,
        event_id,
        recorded_at,
        occurred_at,
        annotator_ids,
        adjudication_id,
        count() OVER per_version AS labels_so_far,
        if({time:String} = 'event', (occurred_at, recorded_at, event_id),
           (recorded_at, occurred_at, event_id)) AS key,
        max(key) OVER per_version AS latest_key
    FROM labels FINAL
    WHERE if({time:String} = 'event', occurred_at, recorded_at) <= {at:DateTime64(3, 'UTC')}
      AND ({comment_id:String} = '' OR comment_id = {comment_id:String})
      AND ({schema_version:String} = '' OR schema_version = {schema_version:String})
      AND run_id = ''
    WINDOW per_version AS (PARTITION BY comment_id, schema_version)
)
WHERE key = latest_key
