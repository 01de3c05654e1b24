"""Audio-text dual encoders (CLAP-style): the model families training builds, the
checkpoint folders they read and write, and the loading the quality scorer uses."""
