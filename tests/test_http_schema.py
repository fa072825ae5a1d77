"""The OpenAPI document: valid OpenAPI 3.1, and a live daemon that keeps to it under schemathesis.

schemathesis generates requests from the document (a few examples per
operation, bounded so the run stays well under a minute) against a real
daemon, and checks that none gets a 5xx and every response matches its
documented status, content type and schema. The event streams are left out:
they never end, by design (their tests are in test_http_api.py).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from http_daemons import client, start
from hyphal.control.process import DaemonProcess
from hyphal.http.access import load_or_create_token

NEVER_ENDING = r"^/(events|feeds/\{key\}/follow|values/\{key\}/watch)$"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    root = tmp_path_factory.mktemp("http-schema")
    node = start(root, "f", "127.0.0.36", http_toml="")
    try:
        yield node
    finally:
        node.stop()


def test_the_document_is_valid_openapi_3_1(daemon: DaemonProcess) -> None:
    with client(daemon) as api:
        doc: dict[str, Any] = api.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)
    paths = set(doc["paths"])
    for path in (
        "/groups",
        "/groups/{group}/files",
        "/groups/{group}/files/{name}",
        "/blobs/{hash}",
        "/feeds/{key}/follow",
        "/events",
        "/records",
        "/values/{key}/watch",
        "/secrets",
        "/dht",
    ):
        assert path in paths, path
    upload = doc["paths"]["/groups/{group}/files"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    problem = doc["paths"]["/status"]["get"]["responses"]["default"]["content"]
    assert problem == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
"""What must hold for every generated request. Not ``positive_data_acceptance``: a schema-valid
string is often still not a valid key or invite, and a 400 for it is the right answer."""


def test_no_request_gets_a_5xx_or_breaks_the_schema(daemon: DaemonProcess, tmp_path: Path) -> None:
    token = load_or_create_token(daemon.data_dir)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        daemon.info["http"] + "/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(CHECKS),
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "3",
        "--seed",
        "20261202",
        "--generation-deterministic",
        "--exclude-path-regex",
        NEVER_ENDING,
        "--request-timeout",
        "30",
        "--workers",
        "4",
        "--suppress-health-check",
        "all",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    print(done.stdout[-4000:])
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    assert "passed" in done.stdout


def test_the_daemon_still_answers_after_the_fuzzing(daemon: DaemonProcess, tmp_path: Path) -> None:
    with client(daemon) as api:
        assert api.get("/status").status_code == 200
    assert "crashed" not in daemon.log_path.read_text()
