"""Read diagram XML safely, and find in it what the catalog needs to know.

Diagrams come from designers' uploads: every file is parsed with DTDs, entities and the
network off, and a document that declares a DOCTYPE (billion laughs, external entities),
in whatever encoding, or that uses XInclude is refused outright. Nothing a file names is
ever fetched: not an entity, a DTD, an included file, a schemaLocation or a stylesheet.
"""
from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator, Mapping

from lxml import etree

from .errors import DiagramProblem

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
FORM_SCHEMA_PROPERTY = "formJsonSchemaFilename"
FORM_UI_SCHEMA_PROPERTY = "formUiSchemaFilename"
MAX_XML_BYTES = 5 * 1024 * 1024
XINCLUDE_NAMESPACES = ("http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude")
# "<!DOCTYPE" as it appears in the bytes of a file in each encoding an XML parser detects by itself.
_DOCTYPE = {codec: "<!DOCTYPE".encode(codec) for codec in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")}


def bpmn_tag(local_name: str) -> str:
    return f"{{{BPMN_NS}}}{local_name}"


def parse_xml(path: str, data: bytes) -> tuple[etree._Element | None, DiagramProblem | None]:
    """Parse one BPMN or DMN file with DTDs, entities and the network off."""
    if len(data) > MAX_XML_BYTES:
        limit = MAX_XML_BYTES // (1024 * 1024)
        return None, DiagramProblem(f"the file is larger than the {limit} MB limit for diagrams.", path)
    if any(spelling in data for spelling in _DOCTYPE.values()):
        return None, _doctype_refused(path, data)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError) as exc:
        detail = getattr(exc, "msg", None) or str(exc)
        return None, DiagramProblem(f"the file is not well-formed XML: {detail.rstrip('.')}.", path,
                                    line=getattr(exc, "lineno", None))
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:  # e.g. an encoding the byte check does not know
        return None, _doctype_refused(path, data)
    for namespace in XINCLUDE_NAMESPACES:
        for element in root.iter(f"{{{namespace}}}*"):
            # lxml includes nothing unless asked to; a diagram that relies on it is refused all the same.
            return None, DiagramProblem(
                f"the file uses XInclude (<{etree.QName(element).localname}>); diagrams must be self-contained, "
                "put the content in the file itself.", path, line=element.sourceline)
    return root, None


def _doctype_refused(path: str, data: bytes) -> DiagramProblem:
    line = None
    for codec, spelling in _DOCTYPE.items():
        if (at := data.find(spelling)) >= 0:
            line = data[:at].count("\n".encode(codec)) + 1
            break
    return DiagramProblem(
        "the file declares a DOCTYPE; DTDs and entities are not allowed in diagrams, remove the declaration.",
        path, line=line)


def uses_namespace(root: etree._Element, namespace: str) -> bool:
    """Tell whether any element or attribute of the document is in this namespace."""
    prefix = f"{{{namespace}}}"
    for element in root.iter():
        if isinstance(element.tag, str) and element.tag.startswith(prefix):
            return True
        if any(name.startswith(prefix) for name in element.attrib):
            return True
    return False


def is_executable(process: etree._Element) -> bool:
    # SpiffWorkflow's own rule: anything but the literal "true" hides the process.
    return process.get("isExecutable", "true") == "true"


def decision_ref(task: etree._Element, flavour: str | None = None) -> str | None:
    """The decision a business rule task calls, as the flavour's parser reads it."""
    called = task.find(f"{bpmn_tag('extensionElements')}/{{{SPIFF_NS}}}calledDecisionId")
    spiff_ref = called.text if called is not None else None
    camunda_ref = task.get(f"{{{CAMUNDA_NS}}}decisionRef")
    if flavour == "spiff":
        return spiff_ref
    if flavour == "camunda":
        return camunda_ref
    return spiff_ref or camunda_ref


def declared_decisions(root: etree._Element) -> list[etree._Element]:
    return [child for child in root if isinstance(child.tag, str) and etree.QName(child).localname == "decision"]


def called_elements(root: etree._Element) -> set[str]:
    return {call.get("calledElement") for call in root.iter(bpmn_tag("callActivity")) if call.get("calledElement")}


def called_decisions(root: etree._Element) -> set[str]:
    return {ref for task in root.iter(bpmn_tag("businessRuleTask")) if (ref := decision_ref(task))}


def form_references(root: etree._Element) -> Iterator[tuple[etree._Element, str, str]]:
    """Yield (task element, property name, file name) for every form a task names."""
    for properties in root.iter(f"{{{SPIFF_NS}}}properties"):
        extensions = properties.getparent()
        if extensions is None or extensions.tag != bpmn_tag("extensionElements"):
            continue
        for prop in properties.iter(f"{{{SPIFF_NS}}}property"):
            name, value = prop.get("name"), prop.get("value")
            if name in (FORM_SCHEMA_PROPERTY, FORM_UI_SCHEMA_PROPERTY) and value:
                yield extensions.getparent(), name, value


def resolve_form(files: Mapping[str, bytes], bpmn_path: str, name: str) -> str | None:
    """Find a form file: next to the diagram, or in a forms/ folder beside or above it."""
    folder = posixpath.dirname(bpmn_path)
    candidates = [posixpath.join(folder, name)]
    while True:
        candidates.append(posixpath.join(folder, "forms", name))
        if not folder:
            break
        folder = posixpath.dirname(folder)
    return next((candidate for candidate in candidates if candidate in files), None)


def xml_documents(files: Mapping[str, bytes], suffix: str) -> Iterable[tuple[str, etree._Element]]:
    for path in sorted(files):
        if path.lower().endswith(suffix):
            root, _ = parse_xml(path, files[path])
            if root is not None:
                yield path, root


def references(files: Mapping[str, bytes]) -> set[tuple[str, str]]:
    """The ("process", id) and ("decision", id) pairs the files' diagrams call."""
    needed = set()
    for _, root in xml_documents(files, ".bpmn"):
        needed |= {("process", called) for called in called_elements(root)}
        needed |= {("decision", ref) for ref in called_decisions(root)}
    return needed


def definitions(files: Mapping[str, bytes]) -> set[tuple[str, str]]:
    """The ("process", id) and ("decision", id) pairs the files define."""
    defined = set()
    for _, root in xml_documents(files, ".bpmn"):
        defined |= {("process", process.get("id")) for process in root.iter(bpmn_tag("process"))}
    for _, root in xml_documents(files, ".dmn"):
        defined |= {("decision", decision.get("id")) for decision in declared_decisions(root)}
    return defined


def form_files(files: Mapping[str, bytes], bpmn_path: str) -> list[str]:
    """The form files a diagram's tasks name, as found among the files."""
    if not bpmn_path.lower().endswith(".bpmn"):
        return []
    root, _ = parse_xml(bpmn_path, files[bpmn_path])
    if root is None:
        return []
    found = (resolve_form(files, bpmn_path, name) for _, _, name in form_references(root))
    return sorted({path for path in found if path})
