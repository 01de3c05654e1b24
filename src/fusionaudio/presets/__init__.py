"""Named configurations shipped with the package."""
