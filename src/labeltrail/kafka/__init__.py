"""The Kafka adapter: the only package (with services/) that imports a Kafka client."""
