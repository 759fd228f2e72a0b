-- export_prior_labels: for an export whose schema version superseded an older one with the
-- `keep_as_feature` policy, each comment's latest live label under that older version (and its
-- confidence), recorded by `at` and before the export's log positions: the export carries them
-- as the feature columns prior_label_<version> and prior_confidence_<version> (export.build).
-- The labels of a labeling run are never read here (empty(run_id)): the old label is the one
-- the live pipeline committed.
-- Parameters: prior_version String, at DateTime64(3, 'UTC'),
--             positions String (JSON [[topic, partition, end_offset], ...]),
--             from_comment, to_comment String: only comments in [from_comment, to_comment)
--             ('' leaves that end open), the ranges export_rows is read in.
SELECT
    comment_id,
    argMax(label, (recorded_at, occurred_at, event_id)) AS prior_label,
    argMax(confidence, (recorded_at, occurred_at, event_id)) AS prior_confidence
FROM labels FINAL
WHERE schema_version = {prior_version:String}
  AND empty(run_id)
  AND recorded_at <= {at:DateTime64(3, 'UTC')}
  AND comment_id >= {from_comment:String}
  AND ({to_comment:String} = '' OR comment_id < {to_comment:String})
  AND arrayExists(p -> p.1 = topic AND p.2 = partition AND offset < p.3,
        JSONExtract({positions:String}, 'Array(Tuple(String, UInt32, UInt64))'))
GROUP BY comment_id
ORDER BY comment_id
