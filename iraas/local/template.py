"""Read a CloudFormation/SAM template and evaluate the intrinsic functions the local stack needs."""

from __future__ import annotations

import base64
import logging
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

MOTO_ACCOUNT_ID = "123456789012"  # moto's default account


class TemplateError(ValueError):
    """The template uses something the embedded provisioner cannot evaluate, or is malformed."""


# --- Loading -------------------------------------------------------------------------------------

_SHORT_TAGS = [
    "Ref", "GetAtt", "Sub", "Join", "If", "Equals", "Select", "Split", "FindInMap", "GetAZs", "ImportValue",
    "Base64", "Not", "And", "Or", "Condition",
]


class TemplateLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's short tags (``!Ref``, ``!Sub``, ...)."""


# CloudFormation reads `Version: 2012-10-17` as a string; YAML 1.1 would make it a date.
TemplateLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _short_tag_constructor(name: str):
    key = name if name in ("Ref", "Condition") else f"Fn::{name}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "GetAtt":  # `!GetAtt Res.Attr.Sub` splits on the first dot only
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        elif isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node, deep=True)
        else:
            raise TemplateError(f"!{name} on an unexpected YAML node: {node!r}")
        return {key: value}

    return construct


for _name in _SHORT_TAGS:
    TemplateLoader.add_constructor(f"!{_name}", _short_tag_constructor(_name))


def load_template(path: str | Path) -> dict[str, Any]:
    """Parse a template file into plain dicts, short tags turned into their long forms."""
    with open(path, encoding="utf-8") as handle:
        template = yaml.load(handle, Loader=TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateError(f"{path} has no Resources section")
    return template


# --- References (for ordering) --------------------------------------------------------------------

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def references(value: Any) -> set[str]:
    """Every name that ``value`` points at through Ref, Fn::GetAtt or Fn::Sub."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref" and isinstance(arg, str):
                return {arg}
            if key == "Fn::GetAtt":
                return {(arg.split(".", 1) if isinstance(arg, str) else arg)[0]}
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                names = {m.split(".", 1)[0] for m in _SUB_VARIABLE.findall(text)}
                return (names - set(variables)) | references(variables)
        for item in value.values():
            found |= references(item)
    return found


def depends_on(resource: dict[str, Any]) -> set[str]:
    """Names a resource needs first: its explicit DependsOn plus what its Properties reference."""
    explicit = resource.get("DependsOn") or []
    explicit = [explicit] if isinstance(explicit, str) else explicit
    return set(explicit) | references(resource.get("Properties", {}))


# --- Evaluation -----------------------------------------------------------------------------------

_NO_VALUE = object()  # AWS::NoValue: the enclosing key or list item disappears


class Resolver:
    """Evaluates intrinsic functions against parameters and the resources created so far.

    ``physical`` maps logical id -> what ``Ref`` returns; ``attributes`` maps logical id ->
    ``Fn::GetAtt`` attributes. The provisioner fills both as it creates resources.
    """

    def __init__(
        self,
        template: dict[str, Any],
        *,
        region: str,
        stack_name: str = "iraas",
        account_id: str = MOTO_ACCOUNT_ID,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        self.template = template
        self.physical: dict[str, str] = {}
        self.attributes: dict[str, dict[str, str]] = {}
        self.pseudo: dict[str, Any] = {
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/0",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        self.parameters = self._parameter_values(parameters or {})
        self._conditions: dict[str, bool] = {}

    # Parameters and conditions

    def _parameter_values(self, given: dict[str, Any]) -> dict[str, Any]:
        declared = self.template.get("Parameters") or {}
        unknown = set(given) - set(declared)
        if unknown:
            raise TemplateError(f"unknown parameters: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in given:
                raw = given[name]
            elif "Default" in spec:
                raw = spec["Default"]
            else:
                continue  # only an error if something refers to it
            values[name] = self._check_parameter(name, spec, raw)
        return values

    @staticmethod
    def _check_parameter(name: str, spec: dict[str, Any], raw: Any) -> Any:
        kind = str(spec.get("Type", "String"))
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            return raw if isinstance(raw, list) else [s.strip() for s in str(raw).split(",")]
        value = str(raw).lower() if isinstance(raw, bool) else str(raw)  # CFN passes strings
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(a) for a in allowed]:
            raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
        if kind == "Number":
            try:
                number = float(value)
            except ValueError:
                raise TemplateError(f"parameter {name}={value!r} is not a number") from None
            low, high = spec.get("MinValue"), spec.get("MaxValue")
            too_low = low is not None and number < float(low)
            if too_low or (high is not None and number > float(high)):
                raise TemplateError(f"parameter {name}={value} is outside [{low}, {high}]")
        return value

    def condition(self, name: str) -> bool:
        """The value of a named condition in the template's Conditions section."""
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    def included(self, resource: dict[str, Any]) -> bool:
        """False for a resource whose Condition is false (CloudFormation skips it)."""
        return "Condition" not in resource or self.condition(resource["Condition"])

    # Intrinsic functions

    def resolve(self, value: Any) -> Any:
        """``value`` with every intrinsic function replaced by its result."""
        if isinstance(value, list):
            items = (self.resolve(item) for item in value)
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref" and isinstance(arg, str):
                return self.ref(arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._function(key, arg)
        pairs = ((key, self.resolve(item)) for key, item in value.items())
        return {key: item for key, item in pairs if item is not _NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name]
        raise TemplateError(self._missing(name, f"cannot resolve Ref {name}"))

    def get_att(self, name: str, attribute: str) -> str:
        try:
            return self.attributes[name][attribute]
        except KeyError:
            if name in self.attributes:
                known = ", ".join(sorted(self.attributes[name])) or "none"
                raise TemplateError(
                    f"Fn::GetAtt {name}.{attribute}: the embedded stack knows only {known}"
                ) from None
            what = f"cannot resolve Fn::GetAtt {name}.{attribute}"
            raise TemplateError(self._missing(name, what)) from None

    def _missing(self, name: str, what: str) -> str:
        resource = (self.template.get("Resources") or {}).get(name)
        if resource is None:
            if name in (self.template.get("Parameters") or {}):
                return f"{what}: parameter {name} has no Default and no value was given"
            return f"{what}: no such parameter or resource"
        return f"{what}: {resource.get('Type')} resources are not created by the embedded stack"

    def _function(self, key: str, arg: Any) -> Any:
        if key == "Fn::GetAtt":
            name, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
            return self.get_att(name, self.resolve(attribute))
        if key == "Fn::Sub":
            return self._sub(arg)
        if key == "Fn::Join":
            delimiter, items = arg
            return delimiter.join(str(item) for item in self.resolve(items))
        if key == "Fn::Select":
            index, items = self.resolve(arg)
            return items[int(index)]
        if key == "Fn::Split":
            delimiter, text = self.resolve(arg)
            return text.split(delimiter)
        if key == "Fn::FindInMap":
            mapping, top, second = self.resolve(arg)[:3]
            try:
                return self.template["Mappings"][mapping][top][second]
            except KeyError:
                raise TemplateError(f"Fn::FindInMap {mapping}/{top}/{second} not found") from None
        if key == "Fn::Base64":
            return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        if key == "Fn::If":
            name, then, otherwise = arg
            return self.resolve(then if self.condition(name) else otherwise)
        if key == "Fn::Equals":
            left, right = self.resolve(arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._truth(arg[0])
        if key == "Fn::And":
            return all(self._truth(item) for item in arg)
        if key == "Fn::Or":
            return any(self._truth(item) for item in arg)
        raise TemplateError(f"{key} is not supported by the embedded stack")

    def _truth(self, value: Any) -> bool:
        result = self.resolve(value)
        return result if isinstance(result, bool) else str(result).lower() == "true"

    def _sub(self, arg: str | list[Any]) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # `${!Literal}` stands for the text `${Literal}`
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]*)\}", substitute, text)

    def outputs(self) -> dict[str, Any]:
        """The template's Outputs that can be evaluated on the embedded stack."""
        result: dict[str, Any] = {}
        for name, output in (self.template.get("Outputs") or {}).items():
            if not self.included(output):
                continue
            try:
                result[name] = self.resolve(output["Value"])
            except TemplateError as exc:
                log.debug("output %s skipped: %s", name, exc)
        return result


def resource_order(template: dict[str, Any]) -> list[str]:
    """Logical ids in an order where each comes after the resources it references."""
    resources = template["Resources"]
    graph: TopologicalSorter[str] = TopologicalSorter()
    for name in resources:
        graph.add(name, *(dep for dep in depends_on(resources[name]) if dep in resources))
    try:
        return list(graph.static_order())
    except CycleError as exc:
        raise TemplateError(f"resources reference each other in a cycle: {exc.args[1]}") from None
