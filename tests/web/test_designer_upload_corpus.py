"""Every file of the public BPMN corpus through the upload paths: the designer's draft upload and the API's deploy.

Each corpus set (built as tests/conformance builds it) goes into a fresh draft of a scratch
set and to POST /api/v1/process-versions: a deployable set is accepted, a rejected one is
refused with its expected problem; never a 500, never a traceback.
"""
from __future__ import annotations

import io

import pytest

from tests.conformance.test_conformance_corpus import DEPLOYABLE, EXPECTED, corpus_sets
from workflows import accounts

SETS = corpus_sets()
SCRATCH = "scratch"


@pytest.fixture
def designer(services, visitor):
    """dana, a designer, signed in to the pages (with their CSRF token) and holding an API token."""
    _, token = accounts.add_user(services, username="dana", roles=["designer"])
    dana = visitor("dana")
    dana.api_headers = {"Authorization": f"Bearer {token}"}
    return dana


def upload_body(files: dict[str, bytes], **fields) -> dict:
    return {"file": [(io.BytesIO(content), name) for name, content in sorted(files.items())], **fields}


def assert_no_traceback(response) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code < 500, text[:500]
    assert "Traceback" not in text and 'File "' not in text


@pytest.mark.parametrize("name", sorted(SETS))
def test_a_corpus_set_uploads_into_a_fresh_draft_or_is_refused_with_its_problem(name, designer, services):
    files = SETS[name].files
    response = designer.client.post(f"/designer/sets/{SCRATCH}/draft/upload", data=upload_body(files),
                                    headers={"X-CSRFToken": designer.token}, content_type="multipart/form-data")
    assert_no_traceback(response)
    with services.uow(read_only=True) as uow:
        draft = uow.drafts.get(SCRATCH)
    outcome, detail = EXPECTED[name]
    if outcome == DEPLOYABLE:
        assert response.status_code == 200, response.json
        assert sorted(response.json["files"]) == sorted(files)
        assert draft.files == dict(files)  # byte for byte
        assert all(problem["severity"] == "warning" for problem in response.json["problems"])
    else:
        assert response.status_code == 422, response.json
        assert any(detail in problem["message"] for problem in response.json["problems"]), response.json
        assert all(problem["file"] in files for problem in response.json["problems"] if problem["file"])
        assert draft is None


@pytest.mark.parametrize("name", sorted(SETS))
def test_a_corpus_set_deploys_through_the_api_upload_or_is_refused_with_its_problem(name, designer, app):
    files = SETS[name].files
    response = app.test_client().post("/api/v1/process-versions", data=upload_body(files, name=SCRATCH),
                                      headers=designer.api_headers, content_type="multipart/form-data")
    assert_no_traceback(response)
    outcome, detail = EXPECTED[name]
    if outcome == DEPLOYABLE:
        assert response.status_code == 201, response.json
        assert sorted(item["process_id"] for item in response.json["items"]) == detail
    else:
        assert response.status_code == 400, response.json
        assert any(detail in problem["message"] for problem in response.json["error"]["problems"]), response.json
