"""Errors raised while fetching, starting or stopping the local stack."""


class StackError(RuntimeError):
    """A component of the local stack could not be fetched, started or reached."""
