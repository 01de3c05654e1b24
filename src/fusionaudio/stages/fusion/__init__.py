"""Stage 2: an LLM fuses the expert cues into a caption, then writes QA pairs."""
