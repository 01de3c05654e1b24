"""Training and evaluating audio-text retrieval models on a run's captions (or on caption
files users already have)."""
