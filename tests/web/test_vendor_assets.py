"""bpmn-js's viewer and modeler bundles and styles, served from node_modules to signed-in people only, and nothing else from it."""
from __future__ import annotations

import pytest

from service.web.vendor import NOT_INSTALLED

VIEWER = "/vendor/bpmn-js/bpmn-navigated-viewer.production.min.js"
MODELER = "/vendor/bpmn-js/bpmn-modeler.production.min.js"


class TestSignedIn:
    def test_the_navigated_viewer_bundle_is_served_as_javascript_and_cached(self, visitor):
        response = visitor("carla").get(VIEWER)
        assert response.status_code == 200
        assert "javascript" in response.mimetype
        assert b"BpmnJS" in response.data, "the prebuilt bundle defines window.BpmnJS"
        assert response.cache_control.max_age >= 24 * 3600

    def test_the_modeler_bundle_for_the_designer_pages_is_served_as_javascript_and_cached(self, visitor):
        response = visitor("carla").client.get(MODELER)
        assert response.status_code == 200
        assert response.mimetype == "text/javascript"
        assert b"BpmnJS" in response.data and b"element.updateModdleProperties" in response.data, "the modeler, not a viewer"
        assert response.cache_control.max_age >= 24 * 3600

    @pytest.mark.parametrize("name, mimetype", [
        ("assets/diagram-js.css", "text/css"),
        ("assets/bpmn-js.css", "text/css"),
        ("assets/bpmn-font/css/bpmn.css", "text/css"),
        ("assets/bpmn-font/font/bpmn.woff2", "font/woff2"),
    ])
    def test_the_viewer_styles_and_the_font_they_reference_are_served(self, visitor, name, mimetype):
        response = visitor("carla").client.get(f"/vendor/bpmn-js/{name}")  # binary: not read as a page
        assert response.status_code == 200
        assert response.mimetype == mimetype

    @pytest.mark.parametrize("name", [
        "../../package.json",
        "..%2F..%2Fpackage.json",
        "bpmn-modeler.development.js",
        "bpmn-viewer.production.min.js",
        "bpmn-navigated-viewer.development.js",
        "assets/bpmn-font/css/bpmn-embedded.css",
        "no-such-file.js",
    ])
    def test_a_file_outside_the_allowlist_is_not_found(self, visitor, name):
        assert visitor("carla").get(f"/vendor/bpmn-js/{name}").status_code == 404

    def test_without_bpmn_js_installed_the_answer_says_how_to_install_it(self, app, visitor, tmp_path):
        empty = tmp_path / "node_modules"
        empty.mkdir()
        app.config["NODE_MODULES"] = str(empty)
        response = visitor("carla").get(VIEWER)
        assert response.status_code == 503
        assert "make run" in NOT_INSTALLED and "npm ci" in NOT_INSTALLED
        assert NOT_INSTALLED in response.get_data(as_text=True)


class TestSignedOut:
    @pytest.mark.parametrize("path", [VIEWER, MODELER])
    def test_a_signed_out_visitor_is_sent_to_sign_in(self, visitor, path):
        response = visitor().get(path)
        assert response.status_code == 303
        assert response.headers["Location"].startswith("/signin")
