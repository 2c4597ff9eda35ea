"""One error family for the whole assistant.

Every message says what went wrong *and what to do next*; the shells (CLI, HTTP API, UI) map
these classes to exit codes and HTTP statuses instead of inspecting strings.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class: anything the assistant reports to a user on purpose."""

    exit_code: int = 1
    http_status: int = 500


class ConfigError(RagError):
    """A setting is missing, malformed or contradicts another one."""

    exit_code = 2
    http_status = 400


# --- ingestion -------------------------------------------------------------------------------


class IngestError(RagError):
    """A single input could not be turned into a document; other inputs are unaffected."""

    http_status = 422
    reason: str = "could not be read"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.reason)


class UnsupportedFormatError(IngestError):
    http_status = 415
    reason = "unsupported file type"


class EmptyDocumentError(IngestError):
    reason = "no text found"


class BinaryFileError(IngestError):
    reason = "binary data, not text"


class DecodeError(IngestError):
    reason = "text is not valid UTF-8 (nor a recognisable legacy encoding)"


class CorruptFileError(IngestError):
    reason = "file is corrupt or truncated"


class EncryptedFileError(IngestError):
    reason = "file is encrypted (password protected)"


class FileTooLargeError(IngestError):
    http_status = 413
    reason = "file exceeds the size limit"


class UnsafeInputError(IngestError):
    reason = "input rejected as unsafe"


class LoaderTimeoutError(IngestError):
    reason = "parsing took longer than the per-file time limit"


class UnreadablePathError(IngestError):
    reason = "path cannot be read"


# --- index -----------------------------------------------------------------------------------


class IndexStateError(RagError):
    """Problems with the persistent index as a whole."""


class IndexMismatchError(IndexStateError):
    """The index on disk was built with another embedder or chunker than the settings ask for."""

    exit_code = 3
    http_status = 409


class IndexCorruptError(IndexStateError):
    exit_code = 3


class IndexLockedError(IndexStateError):
    """Another process holds the write lock for longer than we are willing to wait."""

    exit_code = 4
    http_status = 503


class IndexDiskFullError(IndexStateError):
    """The disk holding the index filled up mid-write; the last commit stands."""

    exit_code = 8
    http_status = 507


class IndexReadOnlyError(IndexStateError):
    """The index directory cannot be written (a read-only disk or permissions); reading works."""

    exit_code = 8
    http_status = 503


class DocumentNotFoundError(RagError):
    exit_code = 5
    http_status = 404


# --- models ----------------------------------------------------------------------------------


class ModelUnavailableError(RagError):
    """A model's files are missing or broken; the message names the setting to change."""

    exit_code = 6
    http_status = 503


class GenerationError(RagError):
    """The generator failed mid-answer (remote endpoint down, out of memory, ...)."""

    exit_code = 7
    http_status = 502


# --- web shells ------------------------------------------------------------------------------


class RequestError(RagError):
    """A request a web shell refuses (authentication, limits, a malformed body); it carries
    the HTTP status, the error type of the JSON body and any headers (Retry-After)."""

    def __init__(
        self, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = status
        self.kind = kind
        self.message = message
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return self.http_status
