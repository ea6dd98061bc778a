"""Hostile XML and request bodies, through every door that takes them: a clear refusal, nothing read, nothing kept.

XML comes in through `casework validate`, the API's multipart deploy, the designer's draft
upload and the catalog (which also rebuilds stored versions). Each hostile file is refused
naming the file and its problem; no entity, DTD, included file, schema or stylesheet it
names is fetched (a local HTTP server counts the attempts), and /etc/passwd never shows.
Request bodies too large, too deep, not UTF-8 or not JSON get a 4xx that says so.
"""
from __future__ import annotations

import http.client
import http.server
import io
import json
import os
import threading
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from service.cli import main
from service.web.sessions import session_for
from tests.unit.test_engine import SCRIPT_PROCESS
from tests.web.conftest import Visitor
from workflows import accounts, catalog, diagram_xml
from workflows.errors import DiagramError

GOOD = SCRIPT_PROCESS.replace("{script}", "x = 1")
DECLARATION, DOCUMENT = GOOD.split("?>", 1)
PASSWD = "root:x:0:"  # the first line of /etc/passwd on every Linux
SET = "hostile"


def hostile_files(port: int, bait: str) -> dict[str, tuple[bytes, str]]:
    """Each attack as the bytes of hostile.bpmn, with the words its refusal must use."""
    def with_doctype(doctype: str, *entities: str) -> str:
        used = "".join(f"&{entity};" for entity in entities)
        body = DOCUMENT.replace('name="The script">', f'name="The script"><bpmn:documentation>{used}'
                                                      '</bpmn:documentation>', 1)
        return f"{DECLARATION}?>\n{doctype}{body}"

    laughs = "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10))
    xxe = with_doctype(f'<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd"><!ENTITY bait SYSTEM "file://{bait}">]>',
                       "xxe", "bait")
    include = DOCUMENT.replace(
        '<bpmn:scriptTask id="the_script" name="The script">',
        '<bpmn:scriptTask id="the_script" name="The script"><bpmn:extensionElements>'
        '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/>'
        f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file://{bait}" parse="text"/>'
        '</bpmn:extensionElements>', 1)
    padding = "x" * diagram_xml.MAX_XML_BYTES
    return {
        "billion-laughs": (with_doctype(f'<!DOCTYPE d [<!ENTITY lol0 "lol">{laughs}]>', "lol9").encode(), "DOCTYPE"),
        "xxe-file": (xxe.encode(), "DOCTYPE"),
        "xxe-http": (with_doctype(f'<!DOCTYPE d [<!ENTITY xxe SYSTEM "http://127.0.0.1:{port}/entity">]>',
                                  "xxe").encode(), "DOCTYPE"),
        "parameter-entity": (with_doctype(f'<!DOCTYPE d [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p.dtd"> %p;'
                                          f'<!ENTITY % q SYSTEM "file://{bait}"> %q;]>', "xxe").encode(), "DOCTYPE"),
        "xinclude-passwd": (f"{DECLARATION}?>{include}".encode(), "XInclude"),
        "utf16-doctype": (xxe.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"), "DOCTYPE"),
        "oversized": (f"{DECLARATION}?>\n<!-- {padding} -->{DOCUMENT}".encode(), "larger than"),
    }


ATTACKS = sorted(hostile_files(0, "/nowhere"))


class Fetches(http.server.BaseHTTPRequestHandler):
    """Answers anything, and remembers that it was asked: a parser must never ask."""

    asked: list[str] = []

    def do_GET(self):
        self.asked.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'<!ENTITY xxe "fetched">')

    def log_message(self, *args):
        pass


class Attacks:
    """The hostile files, naming a local server and a bait file that nothing may read."""

    def __init__(self, port: int, bait: Path):
        self.bait = bait
        bait.write_text(f"BAIT-{uuid.uuid4().hex}\n")
        self.marker = bait.read_text().strip()
        # Reading a file whose access time is older than its change time updates it (relatime and
        # strictatime mounts): a control read shows whether this mount does.
        self._backdate()
        bait.read_text()
        self.reads_show = bait.stat().st_atime_ns != self._old
        self._backdate()
        self.files = hostile_files(port, str(bait))

    def _backdate(self) -> None:
        changed = self.bait.stat().st_mtime_ns
        self._old = changed - 100 * 10**9
        os.utime(self.bait, ns=(self._old, changed))

    def bait_was_read(self) -> bool:
        return self.reads_show and self.bait.stat().st_atime_ns != self._old

    def assert_nothing_read(self, text: str) -> None:
        assert PASSWD not in text and self.marker not in text and "fetched" not in text and "Traceback" not in text


@pytest.fixture
def attacks(tmp_path):
    """The attacks; afterwards, that no parser asked the server for anything or read the bait."""
    server = http.server.HTTPServer(("127.0.0.1", 0), Fetches)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Fetches.asked = []
    attacks = Attacks(server.server_port, tmp_path / "bait.txt")
    yield attacks
    server.shutdown()
    server.server_close()
    assert Fetches.asked == [], "a parser fetched what a file named"
    assert not attacks.bait_was_read(), "a parser read the file an entity, include or schema named"


class TestHostileXmlIsRefusedAtEveryDoor:
    @pytest.mark.parametrize("attack", ATTACKS)
    def test_casework_validate_exits_1_naming_the_file_and_the_problem(self, attacks, attack, tmp_path, monkeypatch):
        content, expected = attacks.files[attack]
        path = tmp_path / "hostile.bpmn"
        path.write_bytes(content)
        monkeypatch.setenv("CASEWORK_BPMN_PATH", str(tmp_path / "no_library"))
        result = CliRunner().invoke(main, ["validate", str(path)])
        assert result.exit_code == 1, result.output
        assert "hostile.bpmn" in result.output and expected in result.output
        attacks.assert_nothing_read(result.output)

    def test_the_api_multipart_deploy_refuses_each_and_deploys_nothing(self, attacks, as_user):
        dana = as_user("dana")
        for attack, (content, expected) in attacks.files.items():
            response = dana.client.post("/api/v1/process-versions", headers=dana.headers,
                                        content_type="multipart/form-data",
                                        data={"name": SET, "file": (io.BytesIO(content), "hostile.bpmn")})
            text = response.get_data(as_text=True)
            assert response.status_code in (400, 413), (attack, text)
            error = response.json["error"]
            assert expected in error["message"], (attack, text)
            if response.status_code == 400:
                assert [p["file"] for p in error["problems"]] == ["hostile.bpmn"], (attack, text)
            attacks.assert_nothing_read(text)
        assert dana.get("/process-versions").json["items"] == [], "nothing was deployed"

    def test_the_designer_upload_refuses_each_and_keeps_no_draft(self, attacks, app, users):
        designer = signed_in(app, "dana")
        for attack, (content, expected) in attacks.files.items():
            response = designer.client.post(f"/designer/sets/{SET}/draft/upload", content_type="multipart/form-data",
                                            data={"file": (io.BytesIO(content), "hostile.bpmn")},
                                            headers={"X-CSRFToken": designer.token})
            text = response.get_data(as_text=True)
            assert response.status_code in (413, 422), (attack, text)
            # The designer reads only UTF-8 files: a UTF-16 file is refused for that before it is parsed.
            assert (expected if attack != "utf16-doctype" else "not UTF-8") in text, (attack, text)
            attacks.assert_nothing_read(text)
        with app.extensions["casework"].uow(read_only=True) as uow:
            assert uow.drafts.get(SET) is None

    @pytest.mark.parametrize("attack", ATTACKS)
    def test_the_catalog_refuses_it_when_validating_and_when_rebuilding_a_stored_version(self, attacks, attack):
        content, expected = attacks.files[attack]
        files = {"hostile.bpmn": content}
        [problem] = [p for p in catalog.validate(catalog.DiagramSet(SET, files)) if p.is_error]
        assert problem.file == "hostile.bpmn" and expected in problem.message
        with pytest.raises(DiagramError) as refused:
            catalog.bundle_from_files("scripted", files)
        assert expected in str(refused.value)
        attacks.assert_nothing_read(str(problem) + str(refused.value))

    def test_xinclude_is_refused_naming_the_line_even_where_the_schema_allows_any_element(self, attacks):
        files = {"a.bpmn": attacks.files["xinclude-passwd"][0]}
        [problem] = [p for p in catalog.validate(catalog.DiagramSet(SET, files)) if p.is_error]
        assert str(problem) == ("a.bpmn, line 6: the file uses XInclude (<include>); diagrams must be "
                                "self-contained, put the content in the file itself.")

    def test_schema_locations_and_stylesheets_are_never_fetched(self, attacks):
        port = int(attacks.files["xxe-http"][0].split(b"127.0.0.1:")[1].split(b"/")[0])
        located = GOOD.replace(
            "<bpmn:definitions ", f'<?xml-stylesheet type="text/xsl" href="file://{attacks.bait}"?>'
            '<bpmn:definitions xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:schemaLocation="http://www.omg.org/spec/BPMN/20100524/MODEL http://127.0.0.1:{port}/BPMN20.xsd" '
            f'xsi:noNamespaceSchemaLocation="file://{attacks.bait}" ', 1)
        files = {"a.bpmn": located.encode()}
        assert [p for p in catalog.validate(catalog.DiagramSet(SET, files)) if p.is_error] == []
        assert catalog.bundle_from_files("scripted", files).process_id == "scripted"
        # The fixture asserts that neither the server nor the bait file was touched.


def signed_in(app, username: str) -> Visitor:
    """A browser session of `username`, holding the page's CSRF token (as tests/web's visitor fixture makes)."""
    visitor = Visitor(app.test_client())
    services = app.extensions["casework"]
    with visitor.client.session_transaction() as session:
        session.update(session_for(accounts.active_user(services, username=username), services.clock.now()))
    visitor.get("/designer")
    assert visitor.token, "the designer page carries a CSRF token"
    return visitor


class TestHostileRequestBodies:
    def test_a_json_body_over_the_upload_limit_gets_a_413_in_json(self, app, as_user):
        carla = as_user("carla")
        limit = app.config["MAX_CONTENT_LENGTH"]
        body = json.dumps({"process_id": "x" * limit}).encode()
        response = carla.client.post("/api/v1/cases", data=body, headers=carla.headers, content_type="application/json")
        assert response.status_code == 413 and response.is_json
        assert response.json["error"]["message"].startswith(
            f"The request is larger than the {limit / 2**20:g} MB limit (CASEWORK_MAX_UPLOAD_BYTES)")
        assert carla.get("/cases").json["items"] == []

    def test_a_form_over_the_upload_limit_gets_a_413_page(self, app, users):
        designer = signed_in(app, "dana")
        limit = app.config["MAX_CONTENT_LENGTH"]
        response = designer.client.post(f"/designer/sets/{SET}/draft/deploy",
                                        data={"csrf_token": designer.token, "note": "x" * limit})
        page = response.get_data(as_text=True)
        assert response.status_code == 413 and response.mimetype == "text/html"
        assert "The request is too large" in page and "CASEWORK_MAX_UPLOAD_BYTES" in page and "Traceback" not in page

    def test_over_the_limit_a_real_server_answers_before_closing_the_connection(self, app, users):
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        oversized = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1024)
        try:
            api = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
            api.request("POST", "/api/v1/cases", body=b'{"process_id": "' + oversized + b'"}',
                        headers={"Authorization": f"Bearer {users['carla']}", "Content-Type": "application/json"})
            answer = api.getresponse()
            assert answer.status == 413 and b"CASEWORK_MAX_UPLOAD_BYTES" in answer.read()
            web = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
            web.request("POST", "/signin", body=b"username=" + oversized,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
            answer = web.getresponse()
            assert answer.status == 413 and b"The request is too large" in answer.read()
        finally:
            server.shutdown()
            server.server_close()

    def test_json_nested_100000_deep_gets_a_400_naming_the_nesting(self, as_user):
        carla = as_user("carla")
        response = carla.client.post("/api/v1/cases", data=b"[" * 100_000 + b"]" * 100_000, headers=carla.headers,
                                     content_type="application/json")
        assert response.status_code == 400 and "nested too deeply" in response.json["error"]["message"]
        assert carla.get("/tasks").status_code == 200, "the worker still serves requests"

    def test_a_body_that_is_not_utf8_gets_a_400_saying_so(self, as_user):
        carla = as_user("carla")
        response = carla.client.post("/api/v1/cases", data=b'{"process_id": "caf\xe9"}', headers=carla.headers,
                                     content_type="application/json")
        assert response.status_code == 400
        assert "not JSON encoded as UTF-8" in response.json["error"]["message"]
        assert carla.get("/cases").json["items"] == []

    def test_a_body_of_the_wrong_content_type_is_refused_naming_it(self, as_user):
        carla = as_user("carla")
        response = carla.client.post("/api/v1/cases", data=b'{"process_id": "x"}', headers=carla.headers,
                                     content_type="text/plain")
        assert response.status_code in (400, 415)
        assert "Content-Type: application/json, not text/plain" in response.json["error"]["message"]
