"""The run folder: the truth of a run. Results shards, the per-stage cache, exports."""
