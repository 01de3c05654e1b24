"""Decoding, resampling, frames, probing and per-clip limits. The only code that opens media."""
