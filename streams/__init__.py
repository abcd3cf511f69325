"""The running spendstream system: Kafka, the Faust worker, ClickHouse, HTTP, CLI."""
