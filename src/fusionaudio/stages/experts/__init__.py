"""Stage 1 experts: each looks at one aspect of a clip and writes one cue."""
