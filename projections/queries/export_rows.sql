-- export_rows: the rows of a versioned training export: for each comment, the latest label under
-- one schema version that was recorded by `at` and lies before the export's log positions, with
-- its soft label, the crowd votes it came from (annotator, answer, confidence, time), the
-- adjudication, the gold-set verdict and the latest committed consensus of each atomic
-- question (question_labels) known by then. Everything is read from records before
-- the positions, so a later vote, label or schema change cannot alter an export.
-- Parameters: schema_version String, at DateTime64(3, 'UTC'),
--             positions String (JSON [[topic, partition, end_offset], ...]),
--             and with run String (a labeling run's id) that run's labels instead of the live
--             pipeline's (clickhouse.client.LIVE_LABELS);
--             from_comment, to_comment String: only comments in [from_comment, to_comment)
--             ('' leaves that end open). An export reads its rows a range of comment ids at a
--             time (label_key_marks), so no query holds every label: a label's votes,
--             adjudication and gold verdict are those of its own comment, in the same range.
WITH
    labels_sel AS (
        SELECT
            comment_id,
            argMax(
                tuple(label, classes, distribution, confidence, route, method, method_params,
                      label_id, event_id, recorded_at, occurred_at, vote_ids, adjudication_id,
                      source_positions),
                (recorded_at, occurred_at, event_id)) AS l
        FROM labels FINAL
        WHERE schema_version = {schema_version:String}
          AND run_id = ''
          AND recorded_at <= {at:DateTime64(3, 'UTC')}
          AND comment_id >= {from_comment:String}
          AND ({to_comment:String} = '' OR comment_id < {to_comment:String})
          AND arrayExists(p -> p.1 = topic AND p.2 = partition AND offset < p.3,
                JSONExtract({positions:String}, 'Array(Tuple(String, UInt32, UInt64))'))
        GROUP BY comment_id
    ),
    votes_sel AS (
        SELECT lv.comment_id AS comment_id,
               groupArray(tuple(v.annotator_id, v.label, v.confidence, v.occurred_at, v.vote_id))
                   AS annotators
        FROM (SELECT comment_id, arrayJoin(tupleElement(l, 12)) AS vote_id FROM labels_sel) AS lv
        INNER JOIN (
            SELECT vote_id, annotator_id, label, confidence, occurred_at FROM votes FINAL
            WHERE comment_id IN (SELECT comment_id FROM labels_sel)
              AND recorded_at <= {at:DateTime64(3, 'UTC')}
              AND arrayExists(p -> p.1 = topic AND p.2 = partition AND offset < p.3,
                    JSONExtract({positions:String}, 'Array(Tuple(String, UInt32, UInt64))'))
        ) AS v ON lv.vote_id = v.vote_id
        GROUP BY lv.comment_id
    ),
    adj_sel AS (
        SELECT adjudication_id,
               argMax(tuple(reviewer_id, label, confidence, note, recorded_at),
                      (recorded_at, occurred_at, event_id)) AS a
        FROM adjudications FINAL
        WHERE schema_version = {schema_version:String}
          AND recorded_at <= {at:DateTime64(3, 'UTC')}
          AND comment_id >= {from_comment:String}
          AND ({to_comment:String} = '' OR comment_id < {to_comment:String})
          AND arrayExists(p -> p.1 = topic AND p.2 = partition AND offset < p.3,
                JSONExtract({positions:String}, 'Array(Tuple(String, UInt32, UInt64))'))
        GROUP BY adjudication_id
    ),
    gold_sel AS (
        SELECT comment_id, argMax(label, (recorded_at, occurred_at, event_id)) AS gold_label
        FROM adjudications FINAL
        WHERE is_gold AND schema_version = {schema_version:String}
          AND recorded_at <= {at:DateTime64(3, 'UTC')}
          AND comment_id >= {from_comment:String}
          AND ({to_comment:String} = '' OR comment_id < {to_comment:String})
          AND arrayExists(p -> p.1 = topic AND p.2 = partition AND offset < p.3,
                JSONExtract({positions:String}, 'Array(Tuple(String, UInt32, UInt64))'))
        GROUP BY comment_id
    ),
    questions_sel AS (
        SELECT comment_id, arraySort(x -> x.1, groupArray(q)) AS questions
        FROM (
            SELECT comment_id,
                   argMax(tuple(question_id, answer, answers, distribution, agreement, label_id),
                          (recorded_at, occurred_at, event_id)) AS q
            FROM question_labels FINAL
            WHERE schema_version = {schema_version:String}
              AND recorded_at <= {at:DateTime64(3, 'UTC')}
              AND comment_id >= {from_comment:String}
              AND ({to_comment:String} = '' OR comment_id < {to_comment:String})
              AND arrayExists(p -> p.1 = topic AND p.2 = partition AND offset < p.3,
                    JSONExtract({positions:String}, 'Array(Tuple(String, UInt32, UInt64))'))
            GROUP BY comment_id, question_id
        )
        GROUP BY comment_id
    )
SELECT
    s.comment_id AS comment_id,
    tupleElement(s.l, 1) AS label,
    tupleElement(s.l, 2) AS classes,
    tupleElement(s.l, 3) AS soft_label,
    tupleElement(s.l, 4) AS confidence,
    tupleElement(s.l, 5) AS route,
    tupleElement(s.l, 6) AS method,
    tupleElement(s.l, 7) AS method_params,
    tupleElement(s.l, 8) AS label_id,
    tupleElement(s.l, 9) AS label_event_id,
    tupleElement(s.l, 10) AS committed_at,
    tupleElement(s.l, 11) AS occurred_at,
    tupleElement(s.l, 14) AS source_positions,
    v.annotators AS votes,
    a.adjudication_id AS adjudication_id,
    tupleElement(a.a, 1) AS reviewer_id,
    tupleElement(a.a, 2) AS adjudicated_label,
    tupleElement(a.a, 3) AS adjudicated_confidence,
    tupleElement(a.a, 4) AS adjudication_note,
    tupleElement(a.a, 5) AS adjudicated_at,
    g.gold_label AS gold_label,
    q.questions AS questions
FROM labels_sel AS s
LEFT JOIN votes_sel AS v ON v.comment_id = s.comment_id
LEFT JOIN adj_sel AS a ON a.adjudication_id = tupleElement(s.l, 13)
LEFT JOIN gold_sel AS g ON g.comment_id = s.comment_id
LEFT JOIN questions_sel AS q ON q.comment_id = s.comment_id
ORDER BY comment_id
SETTINGS join_use_nulls = 1
