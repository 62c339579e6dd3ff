"""Jobs: records, serialisation, enqueue, execution."""
