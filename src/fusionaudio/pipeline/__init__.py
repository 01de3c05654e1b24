"""The stage graph: which stage needs what, caching, resume, and run bookkeeping."""
