-- ambiguous_comments: comments whose crowd disagreed and an expert overrode the majority.
-- Parameters: limit UInt32
SELECT comment_id, any(label) AS label
FROM labels FINAL
WHERE route = 'adjudication' AND length(vote_ids) > 0 AND run_id = ''
GROUP BY comment_id
ORDER BY comment_id
LIMIT {limit:UInt32}
