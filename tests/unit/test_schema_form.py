"""Task forms drawn from JSON Schema and read back from a plain HTML post, for every form in bpmn/."""
from __future__ import annotations

import json
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.datastructures import MultiDict

from service.web.schema_form import Field, build_form, form_level_errors
from service.web.schema_form_read import read_submission
from workflows.errors import InvalidInput
from workflows.forms import validate_submission

ROOT = Path(__file__).resolve().parents[2]
FORMS = sorted((ROOT / "bpmn").glob("*/forms/*.schema.json"))
NEW_YORK = ZoneInfo("America/New_York")
TEMPLATES = Environment(loader=FileSystemLoader(ROOT / "service" / "templates"), autoescape=select_autoescape(["html"]))

REFERRALS = {
    "type": "object",
    "required": ["referrals", "placement"],
    "properties": {
        "referrals": {
            "title": "Referrals", "type": "array", "minItems": 1, "maxItems": 3,
            "items": {
                "title": "Referral", "type": "object", "required": ["provider"], "additionalProperties": False,
                "properties": {
                    "provider": {"title": "Provider", "type": "string", "maxLength": 200},
                    "beds": {"title": "Beds offered", "type": "integer", "minimum": 0, "maximum": 50},
                    "level": {"title": "Level", "type": "string", "oneOf": [
                        {"const": "snf", "title": "Skilled nursing"}, {"const": "irf", "title": "Rehab"}]},
                },
            },
        },
        "placement": {
            "title": "Placement", "type": "object", "required": ["address"],
            "properties": {
                "address": {"title": "Address", "type": "string", "description": "Street and town."},
                "distance_miles": {"title": "Distance (miles)", "type": "number", "minimum": 0},
            },
        },
        "family_informed": {"title": "Family informed", "type": "boolean"},
        "consent_on_file": {"title": "Consent on file", "type": "boolean"},
    },
    "additionalProperties": False,
}
REFERRALS_UI = {
    "ui:order": ["placement", "*", "consent_on_file"],
    "referrals": {"ui:help": "Every provider asked.", "items": {"provider": {"ui:placeholder": "Name of the facility"},
                                                                "level": {"ui:widget": "radio"}}},
    "consent_on_file": {"ui:widget": "checkbox", "ui:title": "Signed consent is on file"},
}


def load(path: Path) -> tuple[dict, dict]:
    ui_path = path.with_name(path.name.replace(".schema.json", ".uischema.json"))
    return json.loads(path.read_text()), json.loads(ui_path.read_text()) if ui_path.exists() else {}


def sample(schema: dict, index: int = 0):
    """Valid data for a property: the first choice (the index-th in array rows), True, 3, a date, a date-time."""
    kinds = schema.get("type")
    kind = next(k for k in kinds if k != "null") if isinstance(kinds, list) else kinds or "object"
    if "enum" in schema:
        return schema["enum"][index % len(schema["enum"])]
    if "oneOf" in schema:
        return schema["oneOf"][index % len(schema["oneOf"])]["const"]
    if kind == "object":
        return {name: sample(child, index) for name, child in schema.get("properties", {}).items()}
    if kind == "array":
        return [sample(schema["items"], i) for i in range(max(schema.get("minItems", 0), 1))]
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return min(max(3, schema.get("minimum", 3)), schema.get("maximum", 3))
    formatted = {"date": "2026-11-23", "date-time": "2026-11-23T14:05:00-05:00"}
    return formatted.get(schema.get("format"), f"Entry {index + 1}")


def as_posted(fields: list[Field]) -> MultiDict:
    """What a browser posts for these fields as drawn, with a token and a button the form does not know."""
    posted = MultiDict([("csrf_token", "t0ken"), ("_action", "complete")])
    for each in walk_leaves(fields):
        if each.widget == "checkbox":
            posted.add(each.name, "")
            if each.value:
                posted.add(each.name, "true")
        elif each.widget in ("checkboxes", "multiselect"):
            for value in each.value:
                posted.add(each.name, value)
        elif each.widget not in ("radio", "select") or each.value:
            posted.add(each.name, each.value)
    return posted


def walk_leaves(fields: list[Field]):
    for each in fields:
        if each.widget == "object":
            yield from walk_leaves(each.children)
        elif each.widget == "array":
            for row in each.children:
                yield from walk_leaves(row)
        else:
            yield each


def by_name(fields: list[Field]) -> dict[str, Field]:
    found = {}
    for each in fields:
        found[each.name] = each
        if each.widget == "object":
            found |= by_name(each.children)
        elif each.widget == "array":
            for row in each.children:
                found |= by_name(row)
    return found


def post(*pairs) -> MultiDict:
    return MultiDict(list(pairs))


def render(fields: list[Field]) -> str:
    page = '{% from "_schema_form.html" import schema_fields %}<form method="post">{{ schema_fields(fields) }}</form>'
    return TEMPLATES.from_string(page).render(fields=fields)


def errors_from(schema: dict, data: dict) -> dict[str, list[str]]:
    with pytest.raises(InvalidInput) as refused:
        validate_submission(schema, data)
    return refused.value.field_errors


class TestEveryFormInTheDiagrams:
    def test_there_are_forms_to_check(self):
        assert len(FORMS) > 50

    @pytest.mark.parametrize("path", FORMS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
    def test_every_property_is_shown_in_ui_order(self, path):
        schema, ui = load(path)
        fields = build_form(schema, ui, values={}, errors={}, zone=NEW_YORK)
        named = [n for n in ui.get("ui:order", []) if n in schema["properties"]]
        expected = named + [n for n in schema["properties"] if n not in named]
        assert [f.name for f in fields] == expected

    @pytest.mark.parametrize("path", FORMS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
    def test_valid_data_comes_back_unchanged_through_the_browser_and_is_accepted(self, path):
        schema, ui = load(path)
        data = sample(schema)
        posted = as_posted(build_form(schema, ui, values=data, errors={}, zone=NEW_YORK))
        read, problems = read_submission(schema, posted, zone=NEW_YORK)
        assert (read, problems) == (data, {})
        assert validate_submission(schema, read, form_name=path.name) == data

    @pytest.mark.parametrize("path", FORMS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
    def test_every_input_is_drawn_with_its_name_and_a_label(self, path):
        schema, ui = load(path)
        fields = build_form(schema, ui, values={}, errors={}, zone=NEW_YORK)
        html = render(fields)
        for each in walk_leaves(fields):
            assert f'name="{each.name}"' in html
            assert f'for="{each.id}' in html


class TestReadingWhatWasPosted:
    def test_a_word_in_a_whole_number_field_is_kept_as_typed_with_an_error_at_its_path(self):
        data, problems = read_submission(REFERRALS, post(("referrals.0.provider", "Oak"), ("referrals.0.beds", "12a")),
                                         zone=NEW_YORK)
        assert data["referrals"] == [{"provider": "Oak", "beds": "12a"}]
        assert problems == {"referrals.0.beds": ["Enter a whole number."]}

    def test_numbers_are_parsed_and_a_bad_one_keeps_its_text(self):
        good, _ = read_submission(REFERRALS, post(("placement.distance_miles", "2.5")), zone=NEW_YORK)
        bad, problems = read_submission(REFERRALS, post(("placement.distance_miles", "far")), zone=NEW_YORK)
        assert good["placement"]["distance_miles"] == 2.5
        assert bad["placement"]["distance_miles"] == "far"
        assert problems == {"placement.distance_miles": ["Enter a number."]}

    def test_blank_optional_fields_are_left_out_not_sent_as_empty_text(self):
        schema, _ = load(ROOT / "bpmn/workers_comp/forms/closure_report.schema.json")
        data, problems = read_submission(schema, post(("closure_date", "2026-11-23"), ("return_to_work_date", ""),
                                                      ("total_disability_days", " "), ("recommendations", "")),
                                         zone=NEW_YORK)
        assert (data, problems) == ({"closure_date": "2026-11-23"}, {})

    def test_a_datetime_is_read_on_the_organisations_clock_either_side_of_a_dst_change(self):
        schema = {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}}
        def read(text):
            return read_submission(schema, post(("at", text)), zone=NEW_YORK)[0]["at"]
        assert read("2026-03-07T14:05") == "2026-03-07T14:05:00-05:00"
        assert read("2026-03-09T14:05") == "2026-03-09T14:05:00-04:00"
        assert read("2026-11-01T00:30") == "2026-11-01T00:30:00-04:00"
        assert read("2026-11-23T14:05") == "2026-11-23T14:05:00-05:00"

    def test_a_time_the_clocks_skip_is_refused_with_the_entry_kept(self):
        schema = {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}}
        data, problems = read_submission(schema, post(("at", "2026-03-08T02:30")), zone=NEW_YORK)
        assert data == {"at": "2026-03-08T02:30"}
        assert "does not exist in America/New_York" in problems["at"][0]

    def test_a_date_that_is_not_one_is_refused(self):
        schema = {"type": "object", "properties": {"on": {"type": "string", "format": "date"}}}
        data, problems = read_submission(schema, post(("on", "2026-02-30")), zone=NEW_YORK)
        assert data == {"on": "2026-02-30"} and problems["on"] == ["Enter a date as year-month-day, e.g. 2026-11-23."]

    def test_blank_rows_are_dropped_and_the_problems_of_later_rows_follow_their_new_index(self):
        data, problems = read_submission(REFERRALS, post(
            ("referrals.0.provider", "Oak"), ("referrals.1.provider", " "), ("referrals.1.beds", ""),
            ("referrals.2.provider", "Elm"), ("referrals.2.beds", "many"), ("referrals.2.level", "irf"),
        ), zone=NEW_YORK)
        assert data["referrals"] == [{"provider": "Oak"}, {"provider": "Elm", "beds": "many", "level": "irf"}]
        assert problems == {"referrals.1.beds": ["Enter a whole number."]}

    def test_a_multiselect_reads_every_chosen_value_once(self):
        schema, _ = load(ROOT / "bpmn/acute_hospital/forms/discharge_evaluation.schema.json")
        chosen = post(("dme_items", "walker"), ("dme_items", "oxygen"), ("dme_items", "walker"))
        data, _ = read_submission(schema, chosen, zone=NEW_YORK)
        assert data == {"dme_items": ["walker", "oxygen"]}

    def test_booleans_come_from_yes_no_radios_or_a_checkbox_with_its_hidden_blank(self):
        answered, _ = read_submission(REFERRALS, post(("family_informed", "false"), ("consent_on_file", "")),
                                      zone=NEW_YORK)
        ticked, _ = read_submission(REFERRALS, post(("consent_on_file", ""), ("consent_on_file", "true")),
                                    zone=NEW_YORK)
        assert answered == {"family_informed": False, "consent_on_file": False, "placement": {}}
        assert ticked == {"consent_on_file": True, "placement": {}}

    def test_fields_the_form_does_not_have_are_ignored(self):
        data, problems = read_submission(REFERRALS, post(("csrf_token", "x"), ("_action", "save"), ("role", "admin"),
                                                         ("placement.address", "1 Main St")), zone=NEW_YORK)
        assert (data, problems) == ({"placement": {"address": "1 Main St"}}, {})

    def test_textarea_line_endings_become_newlines(self):
        schema = {"type": "object", "properties": {"notes": {"type": "string"}}}
        assert read_submission(schema, post(("notes", "one\r\ntwo ")), zone=NEW_YORK)[0] == {"notes": "one\ntwo"}


class TestErrorsLandOnTheirFields:
    def test_a_missing_field_in_a_row_is_shown_on_that_rows_input(self):
        data, _ = read_submission(REFERRALS, post(("referrals.0.beds", "4"), ("placement.address", "x")), zone=NEW_YORK)
        errors = errors_from(REFERRALS, data)
        fields = by_name(build_form(REFERRALS, REFERRALS_UI, values=data, errors=errors, zone=NEW_YORK))
        assert fields["referrals.0.provider"].errors == ["This field is required."]
        assert fields["referrals.0.beds"].value == "4"
        assert form_level_errors(list(fields.values()), errors) == []

    def test_a_blank_required_object_names_each_missing_field(self):
        schema, ui = load(ROOT / "bpmn/workers_comp/forms/obtain_work_status.schema.json")
        data, _ = read_submission(schema, post(), zone=NEW_YORK)
        errors = errors_from(schema, data)
        fields = by_name(build_form(schema, ui, values=data, errors=errors, zone=NEW_YORK))
        assert fields["work_status_report.work_status"].errors == ["This field is required."]
        assert fields["obtained_from"].errors == ["This field is required."]

    def test_errors_below_a_multiselect_belong_to_it_and_others_are_listed_above_the_form(self):
        schema, ui = load(ROOT / "bpmn/acute_hospital/forms/discharge_evaluation.schema.json")
        errors = {"dme_items.0": ["'cane' is not one of the choices."], "data": ["Must be a JSON object."],
                  "surgeon": ["This field is not part of the form."]}
        fields = build_form(schema, ui, values={}, errors=errors, zone=NEW_YORK)
        assert by_name(fields)["dme_items"].errors == ["'cane' is not one of the choices."]
        assert form_level_errors(fields, errors) == [
            "Must be a JSON object.", "surgeon: This field is not part of the form."]

    def test_an_error_about_a_whole_array_is_shown_on_the_array(self):
        fields = build_form(REFERRALS, REFERRALS_UI, values={"referrals": []}, zone=NEW_YORK,
                            errors={"referrals": ["[] should be non-empty"]})
        assert by_name(fields)["referrals"].errors == ["[] should be non-empty"]
        assert by_name(fields)["referrals.0.provider"].errors == []


    def test_an_error_about_a_whole_row_is_shown_on_its_array(self):
        errors = {"referrals.1": ["Additional properties are not allowed ('fax' was unexpected)"]}
        fields = build_form(REFERRALS, REFERRALS_UI, values={"referrals": [{}, {}]}, errors=errors, zone=NEW_YORK)
        assert by_name(fields)["referrals"].errors == errors["referrals.1"]
        assert form_level_errors(fields, errors) == []


class TestAddingRows:
    def test_add_another_keeps_what_was_entered_and_adds_a_blank_row(self):
        posted = post(("referrals.0.provider", "Oak"), ("referrals.0.beds", "two"), ("_add_row", "referrals"))
        data, problems = read_submission(REFERRALS, posted, zone=NEW_YORK)
        fields = by_name(build_form(REFERRALS, REFERRALS_UI, values=data, errors=problems, zone=NEW_YORK,
                                    extra_rows={posted["_add_row"]: 1}))
        assert len(fields["referrals"].children) == 2
        beds = fields["referrals.0.beds"]
        assert (beds.value, beds.errors) == ("two", ["Enter a whole number."])
        assert fields["referrals.1.provider"].value == ""

    def test_a_list_of_plain_entries_has_one_input_per_entry(self):
        schema, ui = load(ROOT / "bpmn/workers_comp/forms/mmi_impairment_rating.schema.json")
        data, _ = read_submission(schema, post(("permanent_restrictions.0", "No lifting"),
                                               ("permanent_restrictions.1", ""),
                                               ("permanent_restrictions.2", "No ladders")), zone=NEW_YORK)
        fields = by_name(build_form(schema, ui, values=data, errors={}, zone=NEW_YORK, extra_rows={}))
        assert data == {"permanent_restrictions": ["No lifting", "No ladders"]}
        assert [fields[f"permanent_restrictions.{i}"].label for i in (0, 1)] == ["Restriction 1", "Restriction 2"]
        assert fields["permanent_restrictions"].add_row_label == "Add another restriction"


class TestLayout:
    def test_an_empty_array_shows_one_blank_row_and_add_another_adds_up_to_max_items(self):
        fields = by_name(build_form(REFERRALS, REFERRALS_UI, values={}, errors={}, zone=NEW_YORK))
        added = by_name(build_form(REFERRALS, REFERRALS_UI, values={"referrals": [{"provider": "Oak"}]}, errors={},
                                   zone=NEW_YORK, extra_rows={"referrals": 5}))
        assert len(fields["referrals"].children) == 1 and fields["referrals"].can_add_row
        assert len(added["referrals"].children) == 3 and not added["referrals"].can_add_row
        assert added["referrals.0.provider"].value == "Oak" and added["referrals.2.provider"].value == ""
        assert fields["referrals"].add_row_label == "Add another referral"

    def test_ui_order_with_a_star_places_the_rest_where_it_stands(self):
        fields = build_form(REFERRALS, REFERRALS_UI, values={}, errors={}, zone=NEW_YORK)
        assert [f.name for f in fields] == ["placement", "referrals", "family_informed", "consent_on_file"]

    def test_booleans_are_yes_no_radios_unless_asked_for_a_checkbox(self):
        fields = by_name(build_form(REFERRALS, REFERRALS_UI, values={}, errors={}, zone=NEW_YORK))
        assert fields["family_informed"].widget == "radio"
        assert fields["family_informed"].options == [("true", "Yes"), ("false", "No"), ("", "Not answered")]
        consent = fields["consent_on_file"]
        assert (consent.widget, consent.label) == ("checkbox", "Signed consent is on file")

    def test_a_required_question_has_no_blank_answer_and_the_browser_requires_it_outside_rows(self):
        schema, ui = load(ROOT / "bpmn/acute_hospital/forms/discharge_evaluation.schema.json")
        fields = by_name(build_form(schema, ui, values={}, errors={}, zone=NEW_YORK))
        assert fields["caregiver_available"].options == [("true", "Yes"), ("false", "No")]
        assert fields["caregiver_available"].required_attr
        rows = by_name(build_form(REFERRALS, REFERRALS_UI, values={}, errors={}, zone=NEW_YORK))
        assert rows["referrals.0.provider"].required and not rows["referrals.0.provider"].required_attr

    def test_a_default_stands_where_there_is_no_answer_yet_but_not_in_a_blank_row(self):
        schema, ui = load(ROOT / "bpmn/acute_hospital/forms/discharge_evaluation.schema.json")
        fresh = by_name(build_form(schema, ui, values={}, errors={}, zone=NEW_YORK))
        answered = by_name(build_form(schema, ui, values={"tolerates_intensive_therapy": True}, errors={},
                                      zone=NEW_YORK))
        assert fresh["tolerates_intensive_therapy"].value == "false"
        assert fresh["tolerates_intensive_therapy"].options == [("true", "Yes"), ("false", "No")]
        assert answered["tolerates_intensive_therapy"].value == "true"
        with_default = {"type": "object", "properties": {"calls": {"type": "array", "items": {
            "type": "object", "properties": {"reached": {"type": "boolean", "default": False}}}}}}
        [calls] = build_form(with_default, {}, values={}, errors={}, zone=NEW_YORK)
        [[reached]] = calls.children
        assert reached.value == "" and ("", "Not answered") in reached.options

    def test_choices_read_as_words_or_as_their_one_of_titles(self):
        schema, ui = load(ROOT / "bpmn/inpatient_rehab/forms/plan_of_care.schema.json")
        fields = by_name(build_form(schema, ui, values={}, errors={}, zone=NEW_YORK))
        assert fields["plan_expected_discharge_destination"].options[0] == ("home_self_care", "Home self care")
        assert fields["therapy_plan.0.discipline"].options == [("PT", "PT"), ("OT", "OT"), ("SLP", "SLP")]
        rows = by_name(build_form(REFERRALS, REFERRALS_UI, values={}, errors={}, zone=NEW_YORK))
        assert rows["referrals.0.level"].options == [("snf", "Skilled nursing"), ("irf", "Rehab"), ("", "Not answered")]

    def test_limits_hints_and_placeholders_are_carried_to_the_inputs(self):
        fields = by_name(build_form(REFERRALS, REFERRALS_UI, values={}, errors={}, zone=NEW_YORK))
        assert (fields["referrals.0.beds"].minimum, fields["referrals.0.beds"].maximum) == (0, 50)
        assert fields["referrals.0.provider"].maxlength == 200
        assert fields["referrals.0.provider"].placeholder == "Name of the facility"
        assert fields["placement.address"].description == "Street and town."
        assert fields["referrals"].help == "Every provider asked."

    def test_a_saved_moment_is_shown_in_local_time(self):
        schema = {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}}
        [summer] = build_form(schema, {}, values={"at": "2026-07-01T18:05:00Z"}, errors={}, zone=NEW_YORK)
        [odd] = build_form(schema, {}, values={"at": "2026-07-01T18:05:30+00:00"}, errors={}, zone=NEW_YORK)
        assert (summer.widget, summer.value, summer.step) == ("datetime", "2026-07-01T14:05", None)
        assert (odd.value, odd.step) == ("2026-07-01T14:05:30", "1")


class TestTheTemplate:
    def test_an_invalid_entry_is_shown_again_with_its_error_beside_it(self):
        data, problems = read_submission(REFERRALS, post(("referrals.0.provider", "Oak"), ("referrals.0.beds", "12a")),
                                         zone=NEW_YORK)
        html = render(build_form(REFERRALS, REFERRALS_UI, values=data, errors=problems, zone=NEW_YORK))
        [field_html] = re.findall(r'<div class="form-field form-field-invalid">.*?</div>', html, re.S)
        assert 'value="12a"' in field_html and 'aria-invalid="true"' in field_html
        assert 'aria-describedby="f-referrals-0-beds-error"' in field_html
        assert '<p class="field-error" id="f-referrals-0-beds-error">' in field_html
        assert "Enter a whole number." in field_html

    def test_choices_are_grouped_under_a_legend_and_rows_can_be_added_without_javascript(self):
        html = render(build_form(REFERRALS, REFERRALS_UI, values={}, errors={"family_informed": ["Choose one."]},
                                 zone=NEW_YORK))
        assert re.search(r'<fieldset class="form-group form-field-invalid" id="f-family_informed" '
                         r'aria-describedby="f-family_informed-error">\s*'
                         r'<legend class="form-legend">Family informed', html)
        assert ('<button type="submit" class="form-add-row" name="_add_row" value="referrals" formnovalidate>'
                'Add another referral</button>') in html
        assert "<legend class=\"form-row-legend\">Referral 1</legend>" in html

    def test_a_required_input_is_marked_and_required(self):
        html = render(build_form(REFERRALS, REFERRALS_UI, values={}, errors={}, zone=NEW_YORK))
        assert re.search(r'<label class="form-label" for="f-placement-address">Address'
                         r'<span class="form-required"', html)
        assert re.search(r'<input [^>]*name="placement.address"[^>]* required', html)
        assert 'aria-describedby="f-placement-address-description"' in html

    def test_a_read_only_choice_is_shown_disabled_and_still_posted(self):
        ui = {**REFERRALS_UI, "family_informed": {"ui:readonly": True}}
        html = render(build_form(REFERRALS, ui, values={"family_informed": True}, errors={}, zone=NEW_YORK))
        assert '<input type="hidden" name="family_informed" value="true">' in html
        assert re.search(r'<input type="radio" [^>]*value="true" checked disabled>', html)

    def test_problems_no_field_shows_are_listed_above_the_form_as_an_alert(self):
        page = '{% from "_schema_form.html" import form_errors %}{{ form_errors(messages) }}'
        html = TEMPLATES.from_string(page).render(messages=["Must be a JSON object.", "x: <b>odd</b>"])
        assert '<div class="form-problems" role="alert">' in html
        assert "<li>Must be a JSON object.</li>" in html and "&lt;b&gt;odd&lt;/b&gt;" in html
        assert TEMPLATES.from_string(page).render(messages=[]).strip() == ""

    def test_the_form_has_no_inline_script_or_style_for_the_content_security_policy(self):
        schema, ui = load(ROOT / "bpmn/acute_hospital/forms/discharge_evaluation.schema.json")
        html = render(build_form(schema, ui, values={}, errors={}, zone=NEW_YORK))
        html += render(build_form(REFERRALS, REFERRALS_UI, values={}, errors={}, zone=NEW_YORK))
        assert "<script" not in html and "style=" not in html and not re.search(r"\son[a-z]+=", html)
