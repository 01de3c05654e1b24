"""Datasets made from a run: exports in the field's formats, each clip's window of audio."""
