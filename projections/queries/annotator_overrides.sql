-- annotator_overrides: adjudications that touched an annotator: as a crowd voter, the labels an
-- expert set against their vote (role 'overridden'); as a reviewer, the verdicts that overrode
-- the crowd majority (role 'overrode').
-- Parameters: annotator String
SELECT * FROM (
SELECT 'overridden' AS role, l.comment_id AS comment_id, l.schema_version AS schema_version,
       v.label AS their_label, l.label AS final_label, a.reviewer_id AS reviewer_id,
       a.note AS note, l.recorded_at AS at
FROM (SELECT * FROM votes FINAL WHERE annotator_id = {annotator:String}) AS v
INNER JOIN (SELECT * FROM labels FINAL WHERE route = 'adjudication' AND run_id = '') AS l
    ON l.comment_id = v.comment_id AND l.schema_version = v.schema_version
LEFT JOIN (SELECT * FROM adjudications FINAL) AS a ON a.adjudication_id = l.adjudication_id
WHERE has(l.vote_ids, v.vote_id) AND v.label != l.label
UNION ALL
SELECT 'overrode', a.comment_id, a.schema_version, a.label, c.label, a.reviewer_id, a.note,
       a.recorded_at
FROM (SELECT * FROM adjudications FINAL
      WHERE reviewer_id = {annotator:String} AND NOT is_gold) AS a
INNER JOIN (SELECT * FROM adjudication_requests FINAL) AS r ON r.request_id = a.request_id
INNER JOIN (SELECT * FROM consensus FINAL) AS c
    ON c.comment_id = r.comment_id AND c.schema_version = r.schema_version
   AND arraySort(c.vote_ids) = arraySort(r.vote_ids)
WHERE c.label != a.label
)
ORDER BY at, comment_id
