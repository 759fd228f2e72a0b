-- label_as_of as it was before the window-function rewrite (argMax over a wide tuple, grouped).
-- Kept as the reference its replacement must equal (tests/audit/test_label_as_of.py) and as
-- the peer of ops/bench/audit.py. Same parameters as queries/label_as_of.sql.
SELECT
    l.comment_id AS comment_id, l.schema_version AS schema_version,
    tupleElement(l.latest, 1) AS label, tupleElement(l.latest, 2) AS confidence,
    tupleElement(l.latest, 3) AS route, tupleElement(l.latest, 4) AS method,
    tupleElement(l.latest, 5) AS classes, tupleElement(l.latest, 6) AS distribution,
    tupleElement(l.latest, 7) AS label_id, tupleElement(l.latest, 8) AS label_event_id,
    tupleElement(l.latest, 9) AS committed_at, tupleElement(l.latest, 10) AS annotator_ids,
    tupleElement(l.latest, 11) AS adjudication_id, l.labels_so_far AS labels_so_far,
    s.version AS superseded_by, s.old_label_policy AS supersede_policy
FROM
(
    SELECT comment_id, schema_version,
        argMax(tuple(label, confidence, route, method, classes, distribution, label_id, event_id,
                     recorded_at, annotator_ids, adjudication_id),
               (recorded_at, occurred_at, event_id)) AS latest,
        count() AS labels_so_far
    FROM labels FINAL
    WHERE recorded_at <= {at:DateTime64(3, 'UTC')}
      AND ({comment_id:String} = '' OR comment_id = {comment_id:String})
      AND ({schema_version:String} = '' OR schema_version = {schema_version:String})
    GROUP BY comment_id, schema_version
) AS l
LEFT JOIN
(
    SELECT supersedes, argMax(version, recorded_at) AS version,
           argMax(old_label_policy, recorded_at) AS old_label_policy
    FROM label_schemas FINAL
    WHERE recorded_at <= {at:DateTime64(3, 'UTC')} AND supersedes IS NOT NULL
    GROUP BY supersedes
) AS s ON s.supersedes = l.schema_version
SETTINGS join_use_nulls = 1
