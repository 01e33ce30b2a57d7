"""Unit tests: Metadata API file parsing and SOAP envelopes of the Salesforce sandbox."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import simple_salesforce

from lc_console.sandbox.salesforce import metadata_soap, metadata_xml
from lc_console.sandbox.salesforce.metadata_xml import XmlError

OBJECT = """<?xml version="1.0" encoding="UTF-8"?>
<CustomObject xmlns="http://soap.sforce.com/2006/04/metadata">
    <label>LostChurn Recovery</label>
    <pluralLabel>LostChurn Recoveries</pluralLabel>
    <nameField>
        <label>Recovery Name</label>
        <type>AutoNumber</type>
        <displayFormat>LCR-{0000}</displayFormat>
    </nameField>
    <deploymentStatus>Deployed</deploymentStatus>
    <sharingModel>ReadWrite</sharingModel>
    <fields>
        <fullName>Recovery_ID__c</fullName>
        <label>Recovery ID</label>
        <type>Text</type>
        <length>64</length>
        <externalId>true</externalId>
        <unique>true</unique>
    </fields>
    <fields>
        <fullName>Status__c</fullName>
        <label>Status</label>
        <type>Picklist</type>
        <valueSet>
            <restricted>true</restricted>
            <valueSetDefinition>
                <sorted>false</sorted>
                <value><fullName>Started</fullName><default>true</default><label>Started</label></value>
                <value><fullName>Retrying</fullName><default>false</default><label>Retrying</label></value>
            </valueSetDefinition>
        </valueSet>
    </fields>
    <fields>
        <fullName>Contact__c</fullName>
        <label>Contact</label>
        <type>Lookup</type>
        <referenceTo>Contact</referenceTo>
        <relationshipName>LostChurn_Recoveries</relationshipName>
        <deleteConstraint>SetNull</deleteConstraint>
    </fields>
</CustomObject>
"""


def test_object_file_parses_fields_and_name_field():
    obj = metadata_xml.parse_object("LostChurn_Recovery__c", OBJECT)
    assert obj.label == "LostChurn Recovery"
    assert obj.name_field is not None and obj.name_field.type == "AutoNumber"
    assert obj.name_field.display_format == "LCR-{0000}"
    assert [f.full_name for f in obj.fields] == ["Recovery_ID__c", "Status__c", "Contact__c"]
    ext, status, contact = obj.fields
    assert (ext.type, ext.length, ext.external_id, ext.unique) == ("Text", 64, True, True)
    assert status.restricted and [v.full_name for v in status.values] == ["Started", "Retrying"]
    assert status.values[0].default and not status.values[1].default
    assert (contact.reference_to, contact.relationship_name) == ("Contact", "LostChurn_Recoveries")
    assert obj.has_object_attributes


def test_enum_error_reports_line_and_column_like_salesforce():
    bad = OBJECT.replace("<type>Picklist</type>", "<type>hat</type>")
    with pytest.raises(XmlError) as info:
        metadata_xml.parse_object("X__c", bad)
    assert info.value.problem == "Error parsing file: 'hat' is not a valid value for the enum 'FieldType'"
    line = bad.splitlines().index("        <type>hat</type>") + 1
    # Salesforce reports the position just past the end tag (8 spaces + 16 chars -> column 25).
    assert (info.value.line, info.value.column) == (line, 25)


def test_unknown_element_is_invalid_at_this_location():
    bad = OBJECT.replace("<length>64</length>", "<lenght>64</lenght>")
    with pytest.raises(XmlError) as info:
        metadata_xml.parse_object("X__c", bad)
    assert info.value.problem == (
        "Error parsing file: Element {http://soap.sforce.com/2006/04/metadata}lenght "
        "invalid at this location in type CustomField"
    )


def test_scalar_type_errors():
    with pytest.raises(XmlError, match="'big' is not valid for the type xsd:int"):
        metadata_xml.parse_object("X__c", OBJECT.replace("<length>64</length>", "<length>big</length>"))
    with pytest.raises(XmlError, match="'yes' is not valid for the type xsd:boolean"):
        metadata_xml.parse_object("X__c", OBJECT.replace("<unique>true</unique>", "<unique>yes</unique>"))


def test_malformed_xml_messages():
    with pytest.raises(XmlError) as info:
        metadata_xml.parse_object("X__c", OBJECT.replace("</fields>", "", 1))
    assert 'The element type "fields" must be terminated by the matching end-tag "</fields>".' in info.value.problem
    with pytest.raises(XmlError, match="Content is not allowed in prolog"):
        metadata_xml.parse_object("X__c", "not xml")
    with pytest.raises(XmlError, match="Premature end of file"):
        metadata_xml.parse_object("X__c", "")
    with pytest.raises(XmlError, match="DOCTYPE is disallowed"):
        metadata_xml.parse_object("X__c", '<!DOCTYPE a [<!ENTITY x "y">]><CustomObject/>')


def test_wrong_root_element():
    with pytest.raises(XmlError, match="invalid at this location"):
        metadata_xml.parse_object("X__c", "<PermissionSet xmlns='http://soap.sforce.com/2006/04/metadata'/>")


def test_manifest_and_permission_set():
    manifest = metadata_xml.parse_manifest(
        "<Package xmlns='http://soap.sforce.com/2006/04/metadata'>"
        "<types><members>A__c</members><members>B__c</members><name>CustomObject</name></types>"
        "<types><members>Contact.X__c</members><name>CustomField</name></types>"
        "<version>62.0</version></Package>"
    )
    assert manifest.types == {"CustomObject": ["A__c", "B__c"], "CustomField": ["Contact.X__c"]}
    assert manifest.version == "62.0"
    ps = metadata_xml.parse_permission_set("LC", """
        <PermissionSet xmlns="http://soap.sforce.com/2006/04/metadata">
          <label>LostChurn</label>
          <objectPermissions><object>A__c</object><allowCreate>true</allowCreate>
            <allowDelete>false</allowDelete><allowEdit>true</allowEdit><allowRead>true</allowRead>
            <modifyAllRecords>false</modifyAllRecords><viewAllRecords>false</viewAllRecords>
          </objectPermissions>
          <fieldPermissions><editable>true</editable><field>A__c.X__c</field><readable>true</readable></fieldPermissions>
          <recordTypeVisibilities><recordType>Opportunity.R</recordType><visible>true</visible></recordTypeVisibilities>
          <userPermissions><enabled>true</enabled><name>ApiEnabled</name></userPermissions>
        </PermissionSet>""")
    assert ps.label == "LostChurn"
    assert ps.object_permissions[0].object == "A__c" and ps.object_permissions[0].allow_edit
    assert (ps.field_permissions[0].field, ps.field_permissions[0].editable) == ("A__c.X__c", True)
    assert ps.record_type_visibilities[0].record_type == "Opportunity.R"
    assert ps.user_permissions == {"ApiEnabled": True}


def test_type_table_matches_the_wsdl_bundled_with_simple_salesforce():
    """data/metadata_types.json must stay what the v63 WSDL says (regenerate if it drifts)."""
    xs = "{http://www.w3.org/2001/XMLSchema}"
    wsdl = Path(simple_salesforce.__file__).parent / "metadata.wsdl"
    schema = next(ET.parse(wsdl).getroot().iter(xs + "schema"))
    complex_types = {ct.get("name"): ct for ct in schema.findall(xs + "complexType")}
    table = metadata_xml.metadata_types()
    for type_name in ("CustomObject", "CustomField", "PermissionSet", "RecordType"):
        names = {e.get("name") for e in complex_types[type_name].iter(xs + "element")}
        assert {row[0] for row in table["types"][type_name]} - {"fullName"} == names
    field_types = {
        e.get("value")
        for st in schema.findall(xs + "simpleType") if st.get("name") == "FieldType"
        for e in st.iter(xs + "enumeration")
    }
    assert set(table["enums"]["FieldType"]) == field_types
    json.dumps(table)  # plain data


# --- SOAP ----------------------------------------------------------------------------------

SIMPLE_SALESFORCE_DEPLOY = """<soapenv:Envelope
        xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:met="http://soap.sforce.com/2006/04/metadata">
   <soapenv:Header>
      <met:CallOptions><met:client>simple_salesforce_metahelper</met:client></met:CallOptions>
      <met:SessionHeader><met:sessionId>00D!abc</met:sessionId></met:SessionHeader>
   </soapenv:Header>
   <soapenv:Body>
      <met:deploy>
         <met:ZipFile>UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==</met:ZipFile>
         <met:DeployOptions>
            <met:checkOnly>True</met:checkOnly>
            <met:rollbackOnError>False</met:rollbackOnError>
            <met:singlePackage>True</met:singlePackage>
            None
            None
         </met:DeployOptions>
      </met:deploy>
   </soapenv:Body>
</soapenv:Envelope>"""


def test_parse_simple_salesforce_deploy_message():
    request = metadata_soap.parse_request(SIMPLE_SALESFORCE_DEPLOY.encode())
    assert request.operation == "deploy"
    assert request.session_id == "00D!abc"
    assert request.client == "simple_salesforce_metahelper"
    options = request.body.find("DeployOptions")
    assert options is not None
    assert metadata_soap.parse_bool(options.findtext("checkOnly")) is True
    assert metadata_soap.parse_bool(options.findtext("rollbackOnError")) is False


def test_fault_shape():
    body = metadata_soap.fault("sf:INVALID_SESSION_ID", "INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session")
    root = ET.fromstring(body)
    ns = {"soapenv": metadata_soap.SOAP_ENV_NS}
    assert root.findtext("soapenv:Body/soapenv:Fault/faultcode", namespaces=ns) == "sf:INVALID_SESSION_ID"
    with pytest.raises(metadata_soap.SoapFault):
        metadata_soap.parse_request(b"<notsoap/>")
