"""Quality: CLAP-style audio-text scores and claim checks against the cues."""
