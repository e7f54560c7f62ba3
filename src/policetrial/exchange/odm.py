"""The trial's questionnaire data as a CDISC ODM 1.3.2 snapshot (XML).

ODM is the format clinical data management systems (REDCap, OpenClinica, Medidata Rave)
import and archive. The file follows the element order and required attributes of the
ODM 1.3.2 specification (CDISC, 2013), as REDCap writes it (REDCapR's test file
inst/test-data/longitudinal-single-arm/cdisc.REDCap.xml is the model):

- `ODM` (FileType="Snapshot", FileOID, CreationDateTime, ODMVersion="1.3.2");
- `Study` / `GlobalVariables` (StudyName, StudyDescription, ProtocolName) and one
  `MetaDataVersion`: `Protocol` with a `StudyEventRef` per event, then `StudyEventDef`,
  `FormDef`, `ItemGroupDef`, `ItemDef` and `CodeList` definitions;
- `AdminData`: one `Location` (LocationType="Site") per randomised station;
- `ClinicalData`: one `SubjectData` per officer, keyed by the officer's pseudonymous key
  (never a collar number or name), with `SiteRef` to the officer's station and
  `StudyEventData` / `FormData` / `ItemGroupData` / `ItemData` for each answer.

Events: `SE.ALLOCATION` (the station and its arm), `SE.PRE` and `SE.POST` (the two
questionnaire time points). ODM 1.3.2 has no element for a randomised arm, so the
allocation is subject-level data: form `F.ALLOCATION` holds `IT.STATION_ID` (the officer's
station) and `IT.ARM`, coded as REDCap's randomisation group (1 = intervention, the last
code control; a stepped wedge's sequences 1 upwards; code list `CL.ARM`), in the officer's
`SE.ALLOCATION` event. Officers are those `policetrial officers` counts (eligible, at a
randomised station) and anyone who answered; before randomisation there is no allocation
event, `SiteRef` or `Location`. Each instrument
is a form; each of its subscales an item group; each item an `ItemDef` with
DataType="integer" (every item, rating or keyed, is answered with an integer code) and a
`CodeList` of its response codes.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterable

import pandas as pd

from policetrial import __version__
from policetrial.exchange.allocation import arm_codes
from policetrial.exchange.redcap import form_name, response_codes
from policetrial.protocol.settings import plan_digest, protocol_settings
from policetrial.records.workspace import Workspace
from policetrial.survey.instruments import Instrument, Item, Questionnaire
from policetrial.survey.roster import TIMES, UNRANDOMISED, survey_roster, workspace_questionnaire
from policetrial.survey.scores import load_responses

__all__ = ["ODM_NS", "ODM_VERSION", "arm_code_list", "odm_snapshot"]

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
ODM_VERSION = "1.3.2"
ALLOCATION = ("SE.ALLOCATION", "F.ALLOCATION", "IG.ALLOCATION")
STATION, ARM = "IT.STATION_ID", "IT.ARM"
EVENT = {time: f"SE.{time.upper()}" for time in TIMES}


def _sub(parent: ET.Element, tag: str, **attributes: str) -> ET.Element:
    return ET.SubElement(parent, f"{{{ODM_NS}}}{tag}", attributes)


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    child = _sub(parent, tag)
    child.text = text
    return child


def _translated(parent: ET.Element, tag: str, text: str) -> None:
    _text(_sub(parent, tag), "TranslatedText", text)


def _code_list_oid(instrument: Instrument, item: Item) -> str:
    """One code list per response scale; an item with its own options has its own."""
    if item.options:
        return f"CL.{item.id}"
    return f"CL.{form_name(instrument)}.{item.response_scale}"


def _groups(instrument: Instrument) -> dict[str, list[Item]]:
    """Subscale -> its items, in the instrument's order."""
    groups: dict[str, list[Item]] = {}
    for item in instrument.items:
        groups.setdefault(item.subscale, []).append(item)
    return groups


def _group_oid(instrument: Instrument, subscale: str) -> str:
    return f"IG.{form_name(instrument)}.{subscale}"


def _code_list(parent: ET.Element, oid: str, name: str, codes: Iterable[tuple[int, str]]) -> None:
    code_list = _sub(parent, "CodeList", OID=oid, Name=name, DataType="integer")
    for code, label in codes:
        _translated(_sub(code_list, "CodeListItem", CodedValue=str(code)), "Decode", label)


def _event_def(mdv: ET.Element, oid: str, name: str, kind: str, forms: list[str]) -> None:
    event = _sub(mdv, "StudyEventDef", OID=oid, Name=name, Repeating="No", Type=kind)
    for n, form in enumerate(forms, start=1):
        _sub(event, "FormRef", FormOID=form, OrderNumber=str(n), Mandatory="No")


def _metadata(
    mdv: ET.Element, questionnaire: Questionnaire, codes: dict[str, tuple[int, str]]
) -> None:
    forms = [f"F.{form_name(i)}" for i in questionnaire.instruments]
    protocol = _sub(mdv, "Protocol")
    events = [(ALLOCATION[0], "Allocation", "Common", [ALLOCATION[1]])]
    events += [(EVENT[t], f"Questionnaire {t}", "Scheduled", forms) for t in TIMES]
    for n, (oid, *_) in enumerate(events, start=1):
        _sub(protocol, "StudyEventRef", StudyEventOID=oid, OrderNumber=str(n), Mandatory="No")
    for event in events:
        _event_def(mdv, *event)
    allocation = _sub(mdv, "FormDef", OID=ALLOCATION[1], Name="Allocation", Repeating="No")
    _sub(allocation, "ItemGroupRef", ItemGroupOID=ALLOCATION[2], Mandatory="Yes")
    for instrument in questionnaire.instruments:
        form = _sub(
            mdv, "FormDef", OID=f"F.{form_name(instrument)}", Name=instrument.title, Repeating="No"
        )
        for subscale in _groups(instrument):
            _sub(
                form, "ItemGroupRef", ItemGroupOID=_group_oid(instrument, subscale), Mandatory="No"
            )
    group = _sub(mdv, "ItemGroupDef", OID=ALLOCATION[2], Name="Allocation", Repeating="No")
    for oid in (STATION, ARM):
        _sub(group, "ItemRef", ItemOID=oid, Mandatory="Yes")
    for instrument in questionnaire.instruments:
        for subscale, items in _groups(instrument).items():
            group = _sub(
                mdv,
                "ItemGroupDef",
                OID=_group_oid(instrument, subscale),
                Name=instrument.subscales[subscale].label,
                Repeating="No",
            )
            for item in items:
                _sub(group, "ItemRef", ItemOID=f"IT.{item.id}", Mandatory="No")
    station = _sub(mdv, "ItemDef", OID=STATION, Name="station_id", DataType="string")
    _translated(station, "Question", "Station (cluster) the officer was posted to")
    arm = _sub(mdv, "ItemDef", OID=ARM, Name="arm", DataType="integer")
    _translated(arm, "Question", "Arm the station was randomised to")
    _sub(arm, "CodeListRef", CodeListOID="CL.ARM")
    for instrument in questionnaire.instruments:
        for item in instrument.items:
            item_def = _sub(mdv, "ItemDef", OID=f"IT.{item.id}", Name=item.id, DataType="integer")
            _translated(
                item_def, "Question", item.text or f"{item.id} (wording supplied privately)"
            )
            _sub(item_def, "CodeListRef", CodeListOID=_code_list_oid(instrument, item))
    _code_list(mdv, "CL.ARM", "arm", codes.values())
    written: set[str] = set()
    for instrument in questionnaire.instruments:
        for item in instrument.items:
            oid = _code_list_oid(instrument, item)
            if oid not in written:
                written.add(oid)
                _code_list(mdv, oid, oid.removeprefix("CL."), response_codes(instrument, item))


def arm_code_list(workspace: Workspace, present: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Arm -> (code, label): REDCap's randomisation groups for a parallel trial; for a
    stepped wedge, whose stations are allocated to sequences, the sequences numbered 1
    upwards in order."""
    codes = arm_codes(workspace)
    labels = workspace.protocol.arms.labels
    present = sorted(set(present))
    if set(present) <= set(codes):
        return {arm: (code, labels[arm]) for arm, code in codes.items()}
    return {arm: (n, arm) for n, arm in enumerate(present, start=1)}


def _admin(root: ET.Element, study_oid: str, stations: list[str], effective: dt.date) -> None:
    admin = _sub(root, "AdminData", StudyOID=study_oid)
    for station in stations:
        location = _sub(admin, "Location", OID=f"LOC.{station}", Name=station, LocationType="Site")
        _sub(
            location,
            "MetaDataVersionRef",
            StudyOID=study_oid,
            MetaDataVersionOID="MDV.1",
            EffectiveDate=effective.isoformat(),
        )


def _item_data(parent: ET.Element, oid: str, value: object) -> None:
    _sub(parent, "ItemData", ItemOID=oid, Value=str(value))


def _answers(event: ET.Element, questionnaire: Questionnaire, answers: pd.Series) -> None:
    for instrument in questionnaire.instruments:
        form: ET.Element | None = None
        for subscale, items in _groups(instrument).items():
            given = [(i, answers.get(i.id)) for i in items]
            given = [(i, v) for i, v in given if v is not None and not pd.isna(v)]
            if not given:
                continue
            if form is None:
                form = _sub(event, "FormData", FormOID=f"F.{form_name(instrument)}")
            group = _sub(form, "ItemGroupData", ItemGroupOID=_group_oid(instrument, subscale))
            for item, value in given:
                _item_data(group, f"IT.{item.id}", int(value))


def _clinical(
    root: ET.Element,
    roster: pd.DataFrame,
    responses: pd.DataFrame,
    questionnaire: Questionnaire,
    codes: dict[str, tuple[int, str]],
    study_oid: str,
) -> None:
    clinical = _sub(root, "ClinicalData", StudyOID=study_oid, MetaDataVersionOID="MDV.1")
    roster = roster.set_index("officer_key")
    keys = sorted(set(roster.index) | set(responses["officer_key"].astype(str)))
    by_officer = {k: f for k, f in responses.groupby(responses["officer_key"].astype(str))}
    for key in keys:
        subject = _sub(clinical, "SubjectData", SubjectKey=key)
        if key in roster.index:
            station, arm = str(roster.at[key, "station_id"]), str(roster.at[key, "arm"])
            if arm != UNRANDOMISED:
                _sub(subject, "SiteRef", LocationOID=f"LOC.{station}")
                event = _sub(subject, "StudyEventData", StudyEventOID=ALLOCATION[0])
                form = _sub(event, "FormData", FormOID=ALLOCATION[1])
                group = _sub(form, "ItemGroupData", ItemGroupOID=ALLOCATION[2])
                _item_data(group, STATION, station)
                _item_data(group, ARM, codes[arm][0])
        submitted = by_officer.get(key)
        if submitted is None:
            continue
        for time in TIMES:
            for _, answers in submitted[submitted["time"] == time].iterrows():
                event = _sub(subject, "StudyEventData", StudyEventOID=EVENT[time])
                _answers(event, questionnaire, answers)


def odm_snapshot(workspace: Workspace, *, created: dt.datetime | None = None) -> bytes:
    """The workspace's allocation and questionnaire responses as an ODM 1.3.2 snapshot."""
    created = created or dt.datetime.now(dt.UTC)
    protocol = workspace.protocol
    questionnaire = workspace_questionnaire(workspace)
    study_oid = f"ST.{protocol.trial.id}"
    stamp = created.isoformat(timespec="seconds")
    ET.register_namespace("", ODM_NS)
    root = ET.Element(
        f"{{{ODM_NS}}}ODM",
        {
            "Description": protocol.trial.title,
            "FileType": "Snapshot",
            "Granularity": "All",
            "FileOID": f"policetrial.{protocol.trial.id}.{created:%Y%m%dT%H%M%S}",
            "CreationDateTime": stamp,
            "AsOfDateTime": stamp,
            "ODMVersion": ODM_VERSION,
            "Originator": protocol.trial.force,
            "SourceSystem": "policetrial",
            "SourceSystemVersion": __version__,
        },
    )
    study = _sub(root, "Study", OID=study_oid)
    variables = _sub(study, "GlobalVariables")
    _text(variables, "StudyName", protocol.trial.title)
    _text(
        variables,
        "StudyDescription",
        f"Cluster randomised trial of police training ({protocol.trial.force}): "
        "the station allocation and the officers' questionnaires.",
    )
    _text(variables, "ProtocolName", protocol.trial.id)
    mdv = _sub(
        study,
        "MetaDataVersion",
        OID="MDV.1",
        Name=f"trial.toml plan {plan_digest(protocol_settings(protocol))[:12]}",
    )
    roster = survey_roster(workspace)
    randomised = roster[roster["arm"] != UNRANDOMISED]
    codes = arm_code_list(workspace, randomised["arm"])
    _metadata(mdv, questionnaire, codes)
    stations = sorted(set(randomised["station_id"]))
    if stations:
        _admin(root, study_oid, stations, created.date())
    _clinical(root, roster, load_responses(workspace), questionnaire, codes, study_oid)
    ET.indent(root)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)
