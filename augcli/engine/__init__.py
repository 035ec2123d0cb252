"""`augcli run`'s machinery: shared stages, the runner, the batch engine, shards, executors, workers."""
