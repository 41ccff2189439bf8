"""Exceptions the suite raises on bad input; each message says what to do."""


class ConfigError(ValueError):
    """An impossible or unknown parameter (prune rate, steps, dataset or preset name...)."""


class DataFormatError(ValueError):
    """A data file exists but its content is not what the official format promises."""


class UnsafePickleError(DataFormatError):
    """A pickle asks to build something other than plain containers and numpy arrays."""


class RunStoreError(RuntimeError):
    """The run store cannot be used (unwritable, or written by another schema version)."""


BAD_INPUT = (ConfigError, DataFormatError, RunStoreError)
"""What a command line reports as its message alone (it says what to do), without a traceback."""
