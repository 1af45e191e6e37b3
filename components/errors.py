"""Errors a user can act on.

Every problem caused by input (config, data, artifacts) is raised as an ``IdistillError`` subclass
whose message names the file, field or id at fault; the CLI prints the message and exits 2 instead
of showing a traceback from deep inside a library.
"""


class IdistillError(Exception):
    """Base class for problems the user can fix."""


class ConfigError(IdistillError):
    """The configuration file or an override is invalid."""


class DataError(IdistillError):
    """A corpus, question set or qrels file is malformed."""


class ArtifactMismatchError(IdistillError):
    """An artifact (index, model) was built from different inputs than the ones in use."""


class GeneratorUnavailable(IdistillError):
    """The generator endpoint did not answer (down, timing out, or returning errors)."""
