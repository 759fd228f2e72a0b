"""The ClickHouse adapter: the only package (with services/) that imports clickhouse_connect."""
