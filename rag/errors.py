"""Exceptions raised by the library.

Every message says what went wrong and what to do next. The CLI turns a `PakusError` into one line
on stderr and a non-zero exit code; the UI shows the message in the page.
"""


class PakusError(Exception):
    """Base class for every error pakus raises on purpose."""

    exit_code = 1


class InvalidInputError(PakusError):
    """The user's input (a question, an option value) cannot be used."""

    exit_code = 2


class ConfigError(InvalidInputError):
    """A setting has a value that is not allowed; the message lists the valid ones."""


class IndexMissingError(PakusError):
    """There is no index where one was expected."""


class IndexCorruptError(PakusError):
    """The index on disk is partial, damaged or of an unknown format."""


class IndexWriteError(PakusError):
    """The index could not be written: a full disk, a size limit, a read-only folder."""


class IndexStaleError(PakusError):
    """The index was built from other documents or other settings than the current ones."""


class DocumentError(PakusError):
    """A source document cannot be read."""


class ModelError(PakusError):
    """A language model or embedder cannot be found, verified or loaded."""


class ModelMissingError(ModelError):
    """The model file or folder does not exist."""


class ModelCorruptError(ModelError):
    """The model file exists but fails its hash check or cannot be parsed."""


class GenerationError(PakusError):
    """The generator failed while producing an answer."""
