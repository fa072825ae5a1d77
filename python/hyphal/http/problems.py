"""Every error as an HTTP status and an RFC 9457 problem body: the one table, and the body's shape.

Each class of :mod:`hyphal.errors` has its own row (a test fails when a new
class has none); an error of a class defined elsewhere takes the row of its
nearest listed ancestor. The ``code`` is stable: clients switch on it, never
on ``title`` or ``detail``, which are for people.

The HTTP layer's own refusals (no token, a foreign Host or Origin, no such
route) are in :data:`HTTP_PROBLEMS`, so one place lists every code a client
can see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hyphal import errors

PROBLEM_TYPE = "application/problem+json"
TYPE_BASE = "https://hyphal.dev/problems/"
"""``type`` is this plus the code: a stable identifier (RFC 9457 §3.1.1), not a page to fetch."""


@dataclass(frozen=True, slots=True)
class Problem:
    status: int
    code: str
    title: str


ERROR_TABLE: dict[type[BaseException], Problem] = {
    errors.HyphalError: Problem(500, "error", "The node failed the request"),
    errors.InvalidInput: Problem(400, "invalid_input", "A parameter is invalid"),
    errors.InvalidAddress: Problem(400, "invalid_address", "An address is not host:port"),
    errors.DecodeError: Problem(400, "decode_error", "Input does not parse"),
    errors.SchemaTooNew: Problem(500, "schema_too_new", "A database was written by a newer hyphal"),
    errors.VerificationError: Problem(502, "verification_failed", "Data failed a cryptographic check"),
    errors.ProofError: Problem(502, "proof_invalid", "A Merkle proof does not verify"),
    errors.SignatureError: Problem(502, "signature_invalid", "A signature does not verify"),
    errors.DecryptionError: Problem(422, "decryption_failed", "Data does not decrypt with the key given"),
    errors.WrongPassphrase: Problem(403, "wrong_passphrase", "The passphrase is wrong"),
    errors.HandshakeError: Problem(502, "handshake_failed", "A peer's handshake failed"),
    errors.ProtocolError: Problem(502, "protocol_error", "A peer broke the wire protocol"),
    errors.NotAvailable: Problem(404, "not_available", "Not here, or no peer has it"),
    errors.Unauthorized: Problem(403, "unauthorized", "This key may not do that"),
    errors.ReadOnlyDevice: Problem(403, "read_only_device", "This device may only read the group"),
    errors.RateLimited: Problem(429, "rate_limited", "Too many attempts or messages; wait and try again"),
    errors.SeqConflict: Problem(409, "seq_conflict", "A compare-and-swap lost"),
    errors.MissingExtra: Problem(501, "missing_extra", "An optional package is not installed"),
    TimeoutError: Problem(504, "timeout", "The network did not answer in time"),
    OSError: Problem(500, "os_error", "The node's file system failed"),
    Exception: Problem(500, "internal", "Internal error in the node"),
}
"""Exception class -> its problem. Looked up along the raised error's MRO."""

HTTP_PROBLEMS: dict[str, Problem] = {
    p.code: p
    for p in (
        Problem(400, "bad_request", "The request does not parse"),
        Problem(401, "token_required", "A valid bearer token is required"),
        Problem(403, "host_refused", "The Host header names no address of this node"),
        Problem(403, "origin_refused", "Cross-site requests are refused"),
        Problem(404, "no_such_route", "No such resource"),
        Problem(405, "method_not_allowed", "Method not allowed here"),
        Problem(406, "not_acceptable", "No representation the client accepts"),
        Problem(413, "too_large", "A part of the request is too large"),
        Problem(416, "range_not_satisfiable", "The range is outside the content"),
        Problem(422, "invalid_request", "The request does not match its schema"),
    )
}
HTTP_ERROR = Problem(500, "http_error", "HTTP error")
"""The code of an HTTP error the framework raises with a status none of the above has."""


def problem_of(exc: BaseException) -> Problem:
    for cls in type(exc).__mro__:
        found = ERROR_TABLE.get(cls)
        if found is not None:
            return found
    return ERROR_TABLE[Exception]


def body(problem: Problem, detail: str, **extra: Any) -> dict[str, Any]:
    """The RFC 9457 body: ``type``, ``title``, ``status``, ``detail``, and our ``code``."""
    return {
        "type": TYPE_BASE + problem.code,
        "title": problem.title,
        "status": problem.status,
        "detail": detail,
        "code": problem.code,
        **extra,
    }


def error_body(exc: BaseException) -> dict[str, Any]:
    """The problem body for ``exc``; its text only for our own errors (others may leak paths)."""
    problem = problem_of(exc)
    if isinstance(exc, errors.HyphalError):
        detail = str(exc) or problem.title
    elif isinstance(exc, TimeoutError):
        detail = f"timed out{f': {exc}' if str(exc) else ''}"
    elif isinstance(exc, OSError):
        detail = exc.strerror or problem.title
    else:
        detail = f"internal error in the node: {type(exc).__name__}"
    return body(problem, detail, error=type(exc).__name__)


__all__ = [
    "ERROR_TABLE",
    "HTTP_ERROR",
    "HTTP_PROBLEMS",
    "PROBLEM_TYPE",
    "Problem",
    "body",
    "error_body",
    "problem_of",
]
