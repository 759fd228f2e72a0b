-- Views for auditors' own SQL: v_<table> is the deduplicated (FINAL) typed table, plus a few
-- derived views that several audit queries share.

CREATE VIEW IF NOT EXISTS v_comments AS SELECT * FROM comments FINAL;

CREATE VIEW IF NOT EXISTS v_label_schemas AS SELECT * FROM label_schemas FINAL;

CREATE VIEW IF NOT EXISTS v_scores AS SELECT * FROM scores FINAL;

CREATE VIEW IF NOT EXISTS v_tasks AS SELECT * FROM tasks FINAL;

CREATE VIEW IF NOT EXISTS v_task_requests AS SELECT * FROM task_requests FINAL;

CREATE VIEW IF NOT EXISTS v_assignments AS SELECT * FROM assignments FINAL;

CREATE VIEW IF NOT EXISTS v_votes AS SELECT * FROM votes FINAL;

CREATE VIEW IF NOT EXISTS v_consensus AS SELECT * FROM consensus FINAL;

CREATE VIEW IF NOT EXISTS v_adjudication_requests AS SELECT * FROM adjudication_requests FINAL;

CREATE VIEW IF NOT EXISTS v_adjudications AS SELECT * FROM adjudications FINAL;

CREATE VIEW IF NOT EXISTS v_labels AS SELECT * FROM labels FINAL;

CREATE VIEW IF NOT EXISTS v_question_labels AS SELECT * FROM question_labels FINAL;

CREATE VIEW IF NOT EXISTS v_weak_votes AS SELECT * FROM weak_votes FINAL;

CREATE VIEW IF NOT EXISTS v_honeypot_results AS SELECT * FROM honeypot_results FINAL;

CREATE VIEW IF NOT EXISTS v_reliability AS SELECT * FROM reliability FINAL;

CREATE VIEW IF NOT EXISTS v_iaa_windows AS SELECT * FROM iaa_windows FINAL;

CREATE VIEW IF NOT EXISTS v_feedback AS SELECT * FROM feedback FINAL;

CREATE VIEW IF NOT EXISTS v_models AS SELECT * FROM models FINAL;

CREATE VIEW IF NOT EXISTS v_model_refusals AS SELECT * FROM model_refusals FINAL;

CREATE VIEW IF NOT EXISTS v_exports AS SELECT * FROM exports FINAL;

CREATE VIEW IF NOT EXISTS v_annotators AS SELECT * FROM annotators FINAL;

CREATE VIEW IF NOT EXISTS v_annotator_suspensions AS SELECT * FROM annotator_suspensions FINAL;

CREATE VIEW IF NOT EXISTS v_annotator_reinstatements AS SELECT * FROM annotator_reinstatements FINAL;

CREATE VIEW IF NOT EXISTS v_erasures AS SELECT * FROM erasures FINAL;

CREATE VIEW IF NOT EXISTS v_dead_letters AS SELECT * FROM dead_letters FINAL;

-- The gold set: expert verdicts recorded as gold (request id 'gold:...'), latest per item.
CREATE VIEW IF NOT EXISTS v_gold AS
SELECT
    comment_id,
    schema_version,
    argMax(label, (recorded_at, event_id)) AS gold_label,
    max(recorded_at) AS gold_recorded_at
FROM adjudications FINAL
WHERE is_gold
GROUP BY comment_id, schema_version;

-- Every comment's slice (attribute 'slice', '' when the source did not set one).
CREATE VIEW IF NOT EXISTS v_comment_slices AS
SELECT comment_id, attributes['slice'] AS slice, attributes AS attributes
FROM comments FINAL;

-- The latest label of every (comment, schema version), with nothing filtered by time.
CREATE VIEW IF NOT EXISTS v_current_labels AS
SELECT
    comment_id,
    schema_version,
    tupleElement(latest, 1) AS label_id,
    tupleElement(latest, 2) AS label,
    tupleElement(latest, 3) AS route,
    tupleElement(latest, 4) AS confidence,
    tupleElement(latest, 5) AS label_event_id,
    tupleElement(latest, 6) AS annotator_ids,
    tupleElement(latest, 7) AS method,
    committed_at
FROM
(
    SELECT
        comment_id,
        schema_version,
        argMax(tuple(label_id, label, route, confidence, event_id, annotator_ids, method),
               (recorded_at, occurred_at, event_id)) AS latest,
        max(recorded_at) AS committed_at
    FROM labels FINAL
    WHERE run_id = ''
    GROUP BY comment_id, schema_version
);

-- Per-item agreement of the crowd on every question ('label' and each atomic question): the
-- share of agreeing annotator pairs (Fleiss' P_i) over the votes of crowd tasks, for items with
-- at least two votes; answered_at is the item's last vote.
CREATE VIEW IF NOT EXISTS v_item_agreement AS
SELECT
    comment_id,
    schema_version,
    question,
    max(answered_at) AS answered_at,
    sum(n) AS n_votes,
    sum(n * (n - 1)) / (sum(n) * (sum(n) - 1)) AS agreement
FROM
(
    SELECT comment_id, schema_version, qa.1 AS question, qa.2 AS answer,
           count() AS n, max(occurred_at) AS answered_at
    FROM votes FINAL
    ARRAY JOIN arrayZip(arrayConcat(['label'], mapKeys(answers)),
                        arrayConcat([label], mapValues(answers))) AS qa
    WHERE task_id IN (SELECT task_id FROM tasks FINAL WHERE kind = 'crowd')
    GROUP BY comment_id, schema_version, question, answer
)
GROUP BY comment_id, schema_version, question
HAVING n_votes >= 2;

-- Every crowd vote (crowd or honeypot task) on an item of the gold set, scored against gold.
CREATE VIEW IF NOT EXISTS v_gold_votes AS
SELECT
    v.vote_id AS vote_id,
    v.comment_id AS comment_id,
    v.schema_version AS schema_version,
    v.annotator_id AS annotator_id,
    v.occurred_at AS voted_at,
    v.label AS label,
    g.gold_label AS gold_label,
    v.label = g.gold_label AS correct
FROM (SELECT * FROM votes FINAL
      WHERE task_id IN (SELECT task_id FROM tasks FINAL WHERE kind IN ('crowd', 'honeypot'))) AS v
INNER JOIN v_gold AS g ON g.comment_id = v.comment_id AND g.schema_version = v.schema_version;
