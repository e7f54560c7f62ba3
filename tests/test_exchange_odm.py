"""The CDISC ODM 1.3.2 export (issue 21, exchange).

Checked against the ODM 1.3.2 specification (CDISC, "Specification for the Operational
Data Model (ODM) Version 1.3.2 Final", 2013): its element definitions give each element's
required attributes, the order of its children and the allowed values, under the sections
"ODM", "Study", "GlobalVariables", "MetaDataVersion", "Protocol", "StudyEventDef",
"FormDef", "ItemGroupDef", "ItemDef", "CodeList", "CodeListItem", "AdminData", "Location",
"MetaDataVersionRef", "ClinicalData", "SubjectData", "SiteRef", "StudyEventData",
"FormData", "ItemGroupData" and "ItemData"; the tables below copy them. The layout (events,
forms, item groups per form, code lists for coded items) follows a real REDCap ODM export,
OuhscBbmc/REDCapR inst/test-data/longitudinal-single-arm/cdisc.REDCap.xml.

Validation against the ODM 1.3.2 XSD is not done: the schema is not shipped with any
package this project installs and the machine cannot download it, so these tests check
the specification's structure rules with the standard library's XML parser instead.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from policetrial.cli.app import app
from policetrial.exchange import odm_snapshot
from policetrial.exchange.odm import ODM_NS
from policetrial.randomise.sealed import current_allocation
from policetrial.records.workspace import Workspace, init_workspace
from policetrial.survey.roster import survey_roster
from policetrial.survey.scores import load_responses
from policetrial.synth import SynthForce

runner = CliRunner()
NS = {"odm": ODM_NS}

REQUIRED = {
    "ODM": {"FileType", "FileOID", "CreationDateTime"},
    "Study": {"OID"},
    "MetaDataVersion": {"OID", "Name"},
    "StudyEventRef": {"StudyEventOID", "Mandatory"},
    "StudyEventDef": {"OID", "Name", "Repeating", "Type"},
    "FormRef": {"FormOID", "Mandatory"},
    "FormDef": {"OID", "Name", "Repeating"},
    "ItemGroupRef": {"ItemGroupOID", "Mandatory"},
    "ItemGroupDef": {"OID", "Name", "Repeating"},
    "ItemRef": {"ItemOID", "Mandatory"},
    "ItemDef": {"OID", "Name", "DataType"},
    "CodeListRef": {"CodeListOID"},
    "CodeList": {"OID", "Name", "DataType"},
    "CodeListItem": {"CodedValue"},
    "Location": {"OID", "Name"},
    "MetaDataVersionRef": {"StudyOID", "MetaDataVersionOID", "EffectiveDate"},
    "ClinicalData": {"StudyOID", "MetaDataVersionOID"},
    "SubjectData": {"SubjectKey"},
    "SiteRef": {"LocationOID"},
    "StudyEventData": {"StudyEventOID"},
    "FormData": {"FormOID"},
    "ItemGroupData": {"ItemGroupOID"},
    "ItemData": {"ItemOID"},
}
"""Required attributes of each element, from its section of the ODM 1.3.2 specification."""

CHILDREN = {
    "ODM": ["Study", "AdminData", "ReferenceData", "ClinicalData", "Association", "Signature"],
    "Study": ["GlobalVariables", "BasicDefinitions", "MetaDataVersion"],
    "GlobalVariables": ["StudyName", "StudyDescription", "ProtocolName"],
    "MetaDataVersion": [
        "Include", "Protocol", "StudyEventDef", "FormDef", "ItemGroupDef", "ItemDef",
        "CodeList", "ImputationMethod", "Presentation", "ConditionDef", "MethodDef",
    ],
    "Protocol": ["Description", "StudyEventRef", "Alias"],
    "StudyEventDef": ["Description", "FormRef", "Alias"],
    "FormDef": ["Description", "ItemGroupRef", "ArchiveLayout", "Alias"],
    "ItemGroupDef": ["Description", "ItemRef", "Alias"],
    "ItemDef": [
        "Description", "Question", "ExternalQuestion", "MeasurementUnitRef", "RangeCheck",
        "CodeListRef", "Role", "Alias",
    ],
    "CodeList": ["Description", "CodeListItem", "EnumeratedItem", "ExternalCodeList", "Alias"],
    "CodeListItem": ["Decode", "Alias"],
    "AdminData": ["User", "Location", "SignatureDef"],
    "Location": ["MetaDataVersionRef"],
    "ClinicalData": ["SubjectData", "AuditRecords", "Signatures", "Annotations"],
    "SubjectData": [
        "AuditRecord", "Signature", "InvestigatorRef", "SiteRef", "Annotation", "StudyEventData",
    ],
    "StudyEventData": ["AuditRecord", "Signature", "Annotation", "FormData"],
    "FormData": ["AuditRecord", "Signature", "ArchiveLayoutRef", "Annotation", "ItemGroupData"],
    "ItemGroupData": ["AuditRecord", "Signature", "Annotation", "ItemData"],
}  # fmt: skip
"""Each element's children in the order its content model allows (ODM 1.3.2)."""

ALLOWED = {
    ("ODM", "FileType"): {"Snapshot", "Transactional"},
    ("StudyEventDef", "Type"): {"Scheduled", "Unscheduled", "Common"},
    ("ItemDef", "DataType"): {
        "integer", "float", "date", "time", "datetime", "string", "text", "boolean", "double",
        "hexBinary", "base64Binary", "hexFloat", "base64Float", "partialDate", "partialTime",
        "partialDatetime", "durationDatetime", "intervalDatetime", "incompleteDatetime",
        "incompleteDate", "incompleteTime", "URI",
    },
    ("CodeList", "DataType"): {"integer", "float", "text", "string"},
    ("Location", "LocationType"): {"Sponsor", "Site", "CRO", "Lab", "Other"},
}  # fmt: skip
"""Enumerated attribute values (ODM 1.3.2 sections ODM, StudyEventDef, ItemDef, CodeList,
Location); Repeating and Mandatory are Yes or No everywhere."""

REFERENCES = {
    ("StudyEventRef", "StudyEventOID"): "StudyEventDef",
    ("StudyEventData", "StudyEventOID"): "StudyEventDef",
    ("FormRef", "FormOID"): "FormDef",
    ("FormData", "FormOID"): "FormDef",
    ("ItemGroupRef", "ItemGroupOID"): "ItemGroupDef",
    ("ItemGroupData", "ItemGroupOID"): "ItemGroupDef",
    ("ItemRef", "ItemOID"): "ItemDef",
    ("ItemData", "ItemOID"): "ItemDef",
    ("CodeListRef", "CodeListOID"): "CodeList",
    ("SiteRef", "LocationOID"): "Location",
    ("ClinicalData", "StudyOID"): "Study",
    ("ClinicalData", "MetaDataVersionOID"): "MetaDataVersion",
    ("MetaDataVersionRef", "StudyOID"): "Study",
    ("MetaDataVersionRef", "MetaDataVersionOID"): "MetaDataVersion",
}


def _tag(element: ET.Element) -> str:
    namespace, _, local = element.tag.partition("}")
    assert namespace == "{" + ODM_NS, f"{element.tag} is outside the ODM 1.3 namespace"
    return local


def _parse(xml: bytes) -> ET.Element:
    return ET.fromstring(xml)


def _definitions(root: ET.Element) -> dict[str, dict[str, ET.Element]]:
    """Element name -> OID -> definition; an OID defined twice fails."""
    defined: dict[str, dict[str, ET.Element]] = {}
    for element in root.iter():
        if "OID" in element.attrib:
            kind = defined.setdefault(_tag(element), {})
            assert element.attrib["OID"] not in kind, f"{_tag(element)} OID defined twice"
            kind[element.attrib["OID"]] = element
    return defined


def test_the_snapshot_has_odm_132_structure(surveyed_ws: Workspace) -> None:
    """Root attributes, required attributes, child order and enumerations (ODM 1.3.2)."""
    created = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)
    root = _parse(odm_snapshot(surveyed_ws, created=created))
    assert _tag(root) == "ODM"
    assert root.attrib["FileType"] == "Snapshot" and root.attrib["ODMVersion"] == "1.3.2"
    assert dt.datetime.fromisoformat(root.attrib["CreationDateTime"]) == created
    assert root.attrib["FileOID"]
    seen = Counter()
    for element in root.iter():
        name = _tag(element)
        seen[name] += 1
        missing = REQUIRED.get(name, set()) - set(element.attrib)
        assert not missing, f"{name} lacks {missing}"
        for attribute in ("Repeating", "Mandatory"):
            assert element.attrib.get(attribute, "No") in {"Yes", "No"}
        for (owner, attribute), values in ALLOWED.items():
            if name == owner and attribute in element.attrib:
                assert element.attrib[attribute] in values, (name, attribute)
        if name in CHILDREN:
            order = CHILDREN[name]
            children = [_tag(c) for c in element]
            assert set(children) <= set(order), f"{name} holds {set(children) - set(order)}"
            positions = [order.index(c) for c in children]
            assert positions == sorted(positions), f"{name}'s children out of order"
    (study,) = root.findall("odm:Study", NS)
    variables = [_tag(c) for c in study.find("odm:GlobalVariables", NS) or []]
    assert variables == CHILDREN["GlobalVariables"]
    for name in ("MetaDataVersion", "Protocol", "StudyEventDef", "FormDef", "ItemGroupDef"):
        assert seen[name] >= 1, name
    for name in ("ItemDef", "CodeList", "Location", "SubjectData", "ItemData"):
        assert seen[name] >= 1, name


def test_every_oid_reference_resolves(surveyed_ws: Workspace) -> None:
    """Every OID reference names a definition, and clinical data nests as the metadata says.

    ODM 1.3.2: a FormData's form is one its StudyEventDef refers to (FormRef), an
    ItemGroupData's group one its FormDef refers to (ItemGroupRef), an ItemData's item one
    its ItemGroupDef refers to (ItemRef); a coded item's value is a CodedValue of its list.
    """
    root = _parse(odm_snapshot(surveyed_ws))
    defined = _definitions(root)
    for element in root.iter():
        for (owner, attribute), kind in REFERENCES.items():
            if _tag(element) == owner:
                assert element.attrib[attribute] in defined.get(kind, {}), (owner, attribute)

    def refs(definition: ET.Element, tag: str, attribute: str) -> set[str]:
        return {r.attrib[attribute] for r in definition.findall(f"odm:{tag}", NS)}

    codes = {
        oid: {i.attrib["CodedValue"] for i in c.findall("odm:CodeListItem", NS)}
        for oid, c in defined["CodeList"].items()
    }
    for event in root.iter(f"{{{ODM_NS}}}StudyEventData"):
        event_def = defined["StudyEventDef"][event.attrib["StudyEventOID"]]
        for form in event.findall("odm:FormData", NS):
            assert form.attrib["FormOID"] in refs(event_def, "FormRef", "FormOID")
            form_def = defined["FormDef"][form.attrib["FormOID"]]
            for group in form.findall("odm:ItemGroupData", NS):
                assert group.attrib["ItemGroupOID"] in refs(
                    form_def, "ItemGroupRef", "ItemGroupOID"
                )
                group_def = defined["ItemGroupDef"][group.attrib["ItemGroupOID"]]
                for item in group.findall("odm:ItemData", NS):
                    assert item.attrib["ItemOID"] in refs(group_def, "ItemRef", "ItemOID")
                    code_list = defined["ItemDef"][item.attrib["ItemOID"]].find(
                        "odm:CodeListRef", NS
                    )
                    if code_list is not None:
                        assert item.attrib["Value"] in codes[code_list.attrib["CodeListOID"]]


def _answers_in(root: ET.Element) -> Counter[tuple[str, str, str, int]]:
    """(subject, time, item, value) for every questionnaire ItemData in the file."""
    found: Counter[tuple[str, str, str, int]] = Counter()
    for subject in root.iter(f"{{{ODM_NS}}}SubjectData"):
        for event in subject.findall("odm:StudyEventData", NS):
            time = event.attrib["StudyEventOID"].removeprefix("SE.").lower()
            if time == "allocation":
                continue
            for item in event.iter(f"{{{ODM_NS}}}ItemData"):
                oid = item.attrib["ItemOID"].removeprefix("IT.")
                found[(subject.attrib["SubjectKey"], time, oid, int(item.attrib["Value"]))] += 1
    return found


def test_every_response_appears_once_with_its_value(surveyed_ws: Workspace) -> None:
    """Round trip: the workspace's answers, read back from the XML, exactly and once each."""
    stored = load_responses(surveyed_ws)
    items = [c for c in stored.columns if c not in {"officer_key", "time", "mode", "submitted_at"}]
    long = stored.melt(id_vars=["officer_key", "time"], value_vars=items).dropna()
    expected = Counter(
        (str(k), str(t), str(i), int(v))
        for k, t, i, v in long[["officer_key", "time", "variable", "value"]].itertuples(index=False)
    )
    assert len(expected) > 100
    assert _answers_in(_parse(odm_snapshot(surveyed_ws))) == expected


def test_subjects_are_pseudonyms_and_carry_their_station_arm(
    surveyed_ws: Workspace,
    force: SynthForce,
) -> None:
    """SubjectKey is the pseudonymous key (no collar number appears); the allocation event
    holds the station and its arm's code, as the sealed allocation says."""
    root = _parse(odm_snapshot(surveyed_ws))
    roster = survey_roster(surveyed_ws)
    keys = {s.attrib["SubjectKey"] for s in root.iter(f"{{{ODM_NS}}}SubjectData")}
    assert keys == set(roster["officer_key"]) | set(load_responses(surveyed_ws)["officer_key"])
    raw = pd.read_csv(force.files["officers"], dtype=str)["collar_number"]
    assert not keys & set(raw)
    sealed = current_allocation(surveyed_ws)
    assert sealed is not None
    code = {"intervention": "1", "control": "2"}
    for subject in root.iter(f"{{{ODM_NS}}}SubjectData"):
        values = {
            i.attrib["ItemOID"]: i.attrib["Value"]
            for e in subject.findall("odm:StudyEventData[@StudyEventOID='SE.ALLOCATION']", NS)
            for i in e.iter(f"{{{ODM_NS}}}ItemData")
        }
        station = values["IT.STATION_ID"]
        assert values["IT.ARM"] == code[sealed.arms[station]]
        assert subject.find("odm:SiteRef", NS).attrib["LocationOID"] == f"LOC.{station}"  # type: ignore[union-attr]


def test_the_cli_writes_the_file_and_names_a_missing_roster(
    roster_ws: Workspace,
    tmp_path: Path,
) -> None:
    out = tmp_path / "odm" / "trial.xml"
    result = runner.invoke(app, ["exchange", "odm", "-w", str(roster_ws.root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    root = _parse(out.read_bytes())
    assert _answers_in(root) == Counter()
    assert len(root.findall(".//odm:SubjectData", NS)) == len(survey_roster(roster_ws))
    empty = init_workspace(tmp_path / "empty")
    result = runner.invoke(app, ["exchange", "odm", "-w", str(empty.root), "--out", str(out)])
    assert result.exit_code == 2 and "officers" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "empty" / "trial.xml").exists()
