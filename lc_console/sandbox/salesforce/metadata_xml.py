"""Metadata API files (package.xml, objects/*.object, permissionsets/*.permissionset) parsed
into dataclasses, with the Metadata API parser's own complaints.

A real org rejects a file whose XML is malformed, names an element its type does not have,
or holds a value its schema type does not accept, with ``Error parsing file: ...`` and the
line and column of the offending element. The element tables come from
``data/metadata_types.json``, derived from the Metadata API v63.0 WSDL (the one bundled with
simple-salesforce; ``tests/test_sf_sandbox_metadata_xml.py`` checks that they still agree).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from xml.parsers import expat

MD_NS = "http://soap.sforce.com/2006/04/metadata"


class XmlError(Exception):
    """A file the Metadata API parser refuses; ``problem`` is the text a DeployMessage shows."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    @property
    def problem(self) -> str:
        return f"Error parsing file: {self.message}"


@dataclass(eq=False)
class Node:
    """One XML element: local name, namespace, stripped text, children and source position.

    ``line``/``column`` point just past the start tag and ``end_line``/``end_column`` just past
    the end tag (1-based columns), which is where Salesforce's parser reports problems.
    """

    tag: str
    ns: str
    attrs: dict[str, str]
    line: int
    column: int
    children: list[Node] = field(default_factory=list)
    text: str = ""
    end_line: int = 0
    end_column: int = 0

    def find(self, tag: str) -> Node | None:
        for child in self.children:
            if child.tag == tag:
                return child
        return None

    def findall(self, tag: str) -> list[Node]:
        return [child for child in self.children if child.tag == tag]

    def findtext(self, tag: str, default: str | None = None) -> str | None:
        child = self.find(tag)
        return child.text if child is not None else default


# Xerces wordings for the expat errors a hand-edited file typically triggers.
_EXPAT_MESSAGES = {
    expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS]: "Premature end of file.",
    expat.errors.codes[expat.errors.XML_ERROR_JUNK_AFTER_DOC_ELEMENT]:
        "The markup in the document following the root element must be well-formed.",
    expat.errors.codes[expat.errors.XML_ERROR_UNCLOSED_TOKEN]:
        "XML document structures must start and end within the same entity.",
    expat.errors.codes[expat.errors.XML_ERROR_UNDEFINED_ENTITY]:
        "An entity was referenced, but not declared.",
}


def parse_xml(data: bytes | str) -> Node:
    """Parse a document into a Node tree, refusing DOCTYPEs as Salesforce's parser does."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[Node] = []
    texts: list[list[str]] = []
    root: list[Node] = []

    def position_after_tag() -> tuple[int, int]:
        # expat reports the position of '<'; the problem position is just past '>'.
        start = parser.CurrentByteIndex
        end = raw.find(b">", start)
        line, col = parser.CurrentLineNumber, parser.CurrentColumnNumber
        if end < 0:
            return line, col + 1
        chunk = raw[start:end + 1]
        if b"\n" in chunk:
            line += chunk.count(b"\n")
            return line, len(chunk) - chunk.rfind(b"\n")
        return line, col + len(chunk) + 1

    def start(name: str, attrs: dict[str, str]) -> None:
        ns, _, local = name.rpartition(" ")
        line, col = position_after_tag()
        node = Node(local, ns, {k.rpartition(" ")[2]: v for k, v in attrs.items()}, line, col)
        if stack:
            stack[-1].children.append(node)
        else:
            root.append(node)
        stack.append(node)
        texts.append([])

    def end(name: str) -> None:
        node = stack.pop()
        node.text = "".join(texts.pop()).strip()
        node.end_line, node.end_column = position_after_tag()

    def chars(data: str) -> None:
        if texts:
            texts[-1].append(data)

    def doctype(*_args: object) -> None:
        raise XmlError(
            'DOCTYPE is disallowed when the feature "http://apache.org/xml/features/'
            'disallow-doctype-decl" set to true.',
            parser.CurrentLineNumber, parser.CurrentColumnNumber + 1,
        )

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.StartDoctypeDeclHandler = doctype
    try:
        parser.Parse(raw, True)
    except expat.ExpatError as exc:
        message = _EXPAT_MESSAGES.get(exc.code)
        if exc.code == expat.errors.codes[expat.errors.XML_ERROR_TAG_MISMATCH] and stack:
            tag = stack[-1].tag
            message = (f'The element type "{tag}" must be terminated by the matching '
                       f'end-tag "</{tag}>".')
        elif message is None and not root:
            message = "Content is not allowed in prolog."
        elif message is None:
            message = ("The content of elements must consist of well-formed character data "
                       "or markup.")
        raise XmlError(message, exc.lineno, exc.offset + 1) from None
    if not root:
        raise XmlError("Premature end of file.", 1, 1)
    return root[0]


# --- schema tables -----------------------------------------------------------------------

@cache
def metadata_types() -> dict:
    """``{"types": {Type: [[element, type, repeated], ...]}, "enums": {Enum: [values]}}``."""
    text = resources.files(__package__).joinpath("data/metadata_types.json").read_text("utf-8")
    return json.loads(text)


_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def _check_scalar(node: Node, type_name: str) -> None:
    value = node.text
    enums = metadata_types()["enums"]
    if type_name in enums:
        if value not in enums[type_name]:
            raise XmlError(f"'{value}' is not a valid value for the enum '{type_name}'",
                           node.end_line, node.end_column)
    elif type_name == "boolean":
        if value not in _BOOLEANS:
            raise XmlError(f"'{value}' is not valid for the type xsd:boolean",
                           node.end_line, node.end_column)
    elif type_name == "int":
        try:
            int(value)
        except ValueError:
            raise XmlError(f"'{value}' is not valid for the type xsd:int",
                           node.end_line, node.end_column) from None
    elif type_name == "double":
        try:
            float(value)
        except ValueError:
            raise XmlError(f"'{value}' is not valid for the type xsd:double",
                           node.end_line, node.end_column) from None


def validate(node: Node, type_name: str) -> None:
    """Raise XmlError for the first element or value ``type_name`` does not allow."""
    table = metadata_types()["types"].get(type_name)
    if table is None:
        return  # types outside the table (never reached from the roots we parse) pass as-is
    allowed = {name: (child_type, repeated) for name, child_type, repeated in table}
    seen: set[str] = set()
    for child in node.children:
        spec = allowed.get(child.tag)
        if spec is None or child.ns not in (MD_NS, "") or (child.tag in seen and not spec[1]):
            raise XmlError(
                f"Element {{{child.ns or MD_NS}}}{child.tag} invalid at this location in type "
                f"{type_name}", child.line, child.column)
        seen.add(child.tag)
        child_type = spec[0]
        if child_type in metadata_types()["types"]:
            validate(child, child_type)
        else:
            _check_scalar(child, child_type)


# --- dataclasses -------------------------------------------------------------------------

def _bool(node: Node, tag: str, default: bool | None = None) -> bool | None:
    text = node.findtext(tag)
    return default if text is None else _BOOLEANS[text]


def _int(node: Node, tag: str) -> int | None:
    text = node.findtext(tag)
    return None if text is None or text == "" else int(text)


def _str(node: Node, tag: str) -> str | None:
    text = node.findtext(tag)
    return text if text else None


@dataclass
class PicklistValueSpec:
    full_name: str
    label: str
    default: bool = False
    is_active: bool = True


@dataclass
class FieldSpec:
    """A CustomField as written in a .object file (``full_name`` without the object)."""

    full_name: str
    type: str | None = None
    label: str | None = None
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    visible_lines: int | None = None
    required: bool = False
    unique: bool = False
    external_id: bool = False
    case_sensitive: bool = False
    default_value: str | None = None
    description: str | None = None
    inline_help_text: str | None = None
    formula: str | None = None
    display_format: str | None = None
    reference_to: str | None = None
    relationship_name: str | None = None
    relationship_label: str | None = None
    delete_constraint: str | None = None
    restricted: bool = False
    sorted: bool = False
    values: list[PicklistValueSpec] = field(default_factory=list)
    value_set_name: str | None = None
    line: int = 0
    column: int = 0


@dataclass
class RecordTypeSpec:
    full_name: str
    label: str | None = None
    active: bool = False
    business_process: str | None = None
    description: str | None = None
    picklist_values: dict[str, list[str]] = field(default_factory=dict)
    line: int = 0
    column: int = 0


@dataclass
class BusinessProcessSpec:
    full_name: str
    description: str | None = None
    is_active: bool = False
    values: list[tuple[str, bool]] = field(default_factory=list)  # (value, default)
    line: int = 0
    column: int = 0


@dataclass
class ListViewSpec:
    full_name: str
    label: str | None = None
    filter_scope: str | None = None
    columns: list[str] = field(default_factory=list)
    line: int = 0
    column: int = 0


@dataclass
class ObjectFile:
    """objects/<Name>.object: a whole custom object, or child components of any object."""

    name: str
    label: str | None = None
    plural_label: str | None = None
    description: str | None = None
    name_field: FieldSpec | None = None
    deployment_status: str | None = None
    sharing_model: str | None = None
    event_type: str | None = None
    publish_behavior: str | None = None
    fields: list[FieldSpec] = field(default_factory=list)
    record_types: list[RecordTypeSpec] = field(default_factory=list)
    business_processes: list[BusinessProcessSpec] = field(default_factory=list)
    list_views: list[ListViewSpec] = field(default_factory=list)
    has_object_attributes: bool = False  # anything beyond child components was given


@dataclass
class ObjectPermissionSpec:
    object: str
    allow_create: bool = False
    allow_read: bool = False
    allow_edit: bool = False
    allow_delete: bool = False
    view_all_records: bool = False
    modify_all_records: bool = False
    view_all_fields: bool = False
    line: int = 0
    column: int = 0


@dataclass
class FieldPermissionSpec:
    field: str  # Object.Field__c
    readable: bool = False
    editable: bool = False
    line: int = 0
    column: int = 0


@dataclass
class RecordTypeVisibilitySpec:
    record_type: str  # Object.DeveloperName
    visible: bool = False
    line: int = 0
    column: int = 0


@dataclass
class PermissionSetSpec:
    name: str
    label: str | None = None
    description: str | None = None
    license: str | None = None
    has_activation_required: bool = False
    object_permissions: list[ObjectPermissionSpec] = field(default_factory=list)
    field_permissions: list[FieldPermissionSpec] = field(default_factory=list)
    record_type_visibilities: list[RecordTypeVisibilitySpec] = field(default_factory=list)
    user_permissions: dict[str, bool] = field(default_factory=dict)


@dataclass
class PackageManifest:
    """package.xml or a destructiveChanges*.xml: members per metadata type, in file order."""

    types: dict[str, list[str]] = field(default_factory=dict)
    version: str | None = None

    def members(self, type_name: str) -> list[str]:
        return self.types.get(type_name, [])


def _root(data: bytes | str, expected: str) -> Node:
    node = parse_xml(data)
    if node.tag != expected:
        raise XmlError(f"Element {{{node.ns or MD_NS}}}{node.tag} invalid at this location",
                       node.line, node.column)
    validate(node, expected)
    return node


def parse_manifest(data: bytes | str) -> PackageManifest:
    root = _root(data, "Package")
    manifest = PackageManifest(version=_str(root, "version"))
    for types in root.findall("types"):
        name = types.findtext("name") or ""
        manifest.types.setdefault(name, []).extend(m.text for m in types.findall("members"))
    return manifest


def field_from_node(node: Node) -> FieldSpec:
    spec = FieldSpec(
        full_name=node.findtext("fullName") or "",
        type=_str(node, "type"),
        label=_str(node, "label"),
        length=_int(node, "length"),
        precision=_int(node, "precision"),
        scale=_int(node, "scale"),
        visible_lines=_int(node, "visibleLines"),
        required=bool(_bool(node, "required", False)),
        unique=bool(_bool(node, "unique", False)),
        external_id=bool(_bool(node, "externalId", False)),
        case_sensitive=bool(_bool(node, "caseSensitive", False)),
        default_value=_str(node, "defaultValue"),
        description=_str(node, "description"),
        inline_help_text=_str(node, "inlineHelpText"),
        formula=_str(node, "formula"),
        display_format=_str(node, "displayFormat"),
        reference_to=_str(node, "referenceTo"),
        relationship_name=_str(node, "relationshipName"),
        relationship_label=_str(node, "relationshipLabel"),
        delete_constraint=_str(node, "deleteConstraint"),
        line=node.line,
        column=node.column,
    )
    value_set = node.find("valueSet")
    if value_set is not None:
        spec.restricted = bool(_bool(value_set, "restricted", False))
        spec.value_set_name = _str(value_set, "valueSetName")
        definition = value_set.find("valueSetDefinition")
        if definition is not None:
            spec.sorted = bool(_bool(definition, "sorted", False))
            for value in definition.findall("value"):
                api_name = value.findtext("fullName") or ""
                spec.values.append(PicklistValueSpec(
                    full_name=api_name,
                    label=value.findtext("label") or api_name,
                    default=bool(_bool(value, "default", False)),
                    is_active=bool(_bool(value, "isActive", True)),
                ))
    return spec


_OBJECT_CHILD_COMPONENTS = {"fields", "recordTypes", "businessProcesses", "listViews",
                            "fullName"}


def parse_object(name: str, data: bytes | str) -> ObjectFile:
    root = _root(data, "CustomObject")
    obj = ObjectFile(
        name=name,
        label=_str(root, "label"),
        plural_label=_str(root, "pluralLabel"),
        description=_str(root, "description"),
        deployment_status=_str(root, "deploymentStatus"),
        sharing_model=_str(root, "sharingModel"),
        event_type=_str(root, "eventType"),
        publish_behavior=_str(root, "publishBehavior"),
        has_object_attributes=any(c.tag not in _OBJECT_CHILD_COMPONENTS for c in root.children),
    )
    name_field = root.find("nameField")
    if name_field is not None:
        obj.name_field = field_from_node(name_field)
    obj.fields = [field_from_node(n) for n in root.findall("fields")]
    for node in root.findall("recordTypes"):
        obj.record_types.append(RecordTypeSpec(
            full_name=node.findtext("fullName") or "",
            label=_str(node, "label"),
            active=bool(_bool(node, "active", False)),
            business_process=_str(node, "businessProcess"),
            description=_str(node, "description"),
            picklist_values={
                pv.findtext("picklist") or "": [v.findtext("fullName") or ""
                                                for v in pv.findall("values")]
                for pv in node.findall("picklistValues")
            },
            line=node.line, column=node.column,
        ))
    for node in root.findall("businessProcesses"):
        obj.business_processes.append(BusinessProcessSpec(
            full_name=node.findtext("fullName") or "",
            description=_str(node, "description"),
            is_active=bool(_bool(node, "isActive", False)),
            values=[(v.findtext("fullName") or "", bool(_bool(v, "default", False)))
                    for v in node.findall("values")],
            line=node.line, column=node.column,
        ))
    for node in root.findall("listViews"):
        obj.list_views.append(ListViewSpec(
            full_name=node.findtext("fullName") or "",
            label=_str(node, "label"),
            filter_scope=_str(node, "filterScope"),
            columns=[c.text for c in node.findall("columns")],
            line=node.line, column=node.column,
        ))
    return obj


def parse_permission_set(name: str, data: bytes | str) -> PermissionSetSpec:
    root = _root(data, "PermissionSet")
    spec = PermissionSetSpec(
        name=name,
        label=_str(root, "label"),
        description=_str(root, "description"),
        license=_str(root, "license"),
        has_activation_required=bool(_bool(root, "hasActivationRequired", False)),
    )
    for node in root.findall("objectPermissions"):
        spec.object_permissions.append(ObjectPermissionSpec(
            object=node.findtext("object") or "",
            allow_create=bool(_bool(node, "allowCreate", False)),
            allow_read=bool(_bool(node, "allowRead", False)),
            allow_edit=bool(_bool(node, "allowEdit", False)),
            allow_delete=bool(_bool(node, "allowDelete", False)),
            view_all_records=bool(_bool(node, "viewAllRecords", False)),
            modify_all_records=bool(_bool(node, "modifyAllRecords", False)),
            view_all_fields=bool(_bool(node, "viewAllFields", False)),
            line=node.line, column=node.column,
        ))
    for node in root.findall("fieldPermissions"):
        spec.field_permissions.append(FieldPermissionSpec(
            field=node.findtext("field") or "",
            readable=bool(_bool(node, "readable", False)),
            editable=bool(_bool(node, "editable", False)),
            line=node.line, column=node.column,
        ))
    for node in root.findall("recordTypeVisibilities"):
        spec.record_type_visibilities.append(RecordTypeVisibilitySpec(
            record_type=node.findtext("recordType") or "",
            visible=bool(_bool(node, "visible", False)),
            line=node.line, column=node.column,
        ))
    for node in root.findall("userPermissions"):
        spec.user_permissions[node.findtext("name") or ""] = bool(_bool(node, "enabled", False))
    return spec
