"""The ClickHouse adapter: the only package that imports clickhouse_connect, through
:func:`labeltrail.clickhouse.client.client_from` alone."""
