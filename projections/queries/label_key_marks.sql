-- label_key_marks: the first key of every granule of `labels` (its primary index: about one
-- mark per 8,192 rows of each part) with the granule's row count, in comment order. A bulk
-- read splits the labels into ranges of comment ids of about equal size from it
-- (labeltrail.export.build.comment_ranges) without reading a row.
SELECT comment_id, rows_in_granule AS rows
FROM mergeTreeIndex(currentDatabase(), labels)
ORDER BY comment_id
