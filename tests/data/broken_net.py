"""A user's module that cannot be imported, with a two-line reason (custom-model tests)."""

raise ImportError(
    "this module needs a library that is not installed:\n"
    "  libfoo.so.1: cannot open shared object file: No such file or directory"
)
