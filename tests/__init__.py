"""The pytest suite: the user-facing contract of the `obj` package."""
