"""Just enough IAM policy evaluation to check a call the code makes against template.yaml's roles.

Allow statements only (the roles have no Deny), ``*`` and ``?`` in actions and resources, and the
condition operators the roles use. A role's statements come resolved, as CloudFormation would
resolve them: :func:`resolved_statements` fills every Ref and GetAtt with a readable stand-in
(``<Name>`` / ``<Name.Attribute>``) unless the test gives the real value.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from iraas.local.template import MOTO_ACCOUNT_ID, Resolver


class _Attributes(dict):
    def __init__(self, name: str, known: Mapping[str, str]) -> None:
        super().__init__(known)
        self.name = name

    def __missing__(self, attribute: str) -> str:
        return f"<{self.name}.{attribute}>"


def resolved_statements(
    template: dict[str, Any], role: str, stack_name: str, parameters: Mapping[str, Any] | None = None,
    physical: Mapping[str, str] | None = None, attributes: Mapping[str, Mapping[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """``role``'s policy statements with every intrinsic function evaluated: its own, and those of the
    ``AWS::IAM::Policy`` resources attached to it that the stack creates with these parameters."""
    resolver = Resolver(template, region="us-east-1", stack_name=stack_name, account_id=MOTO_ACCOUNT_ID,
                        parameters=dict(parameters or {}))
    for name in template["Resources"]:
        resolver.physical[name] = (physical or {}).get(name, f"<{name}>")
        resolver.attributes[name] = _Attributes(name, (attributes or {}).get(name, {}))
    policies = resolver.resolve(template["Resources"][role]["Properties"].get("Policies", []))
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and resolver.included(resource) \
                and {"Ref": role} in resource["Properties"].get("Roles", []):
            policies.append(resolver.resolve(resource["Properties"]))
    return [s for p in policies for s in p["PolicyDocument"]["Statement"]]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _holds(operator: str, key: str, expected: Any, context: Mapping[str, Any]) -> bool:
    qualifier, _, base = operator.rpartition(":")  # ForAllValues:StringEquals -> ForAllValues, ...
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    wanted = [str(e) for e in _listed(expected)]
    if base == "Null":  # "false": the key must be in the request; "true": it must not
        return (key not in context) == (wanted[0].lower() == "true")
    if key not in context:
        return if_exists or qualifier == "ForAllValues"

    def one(value: Any) -> bool:
        text = str(value)
        if base in ("StringEquals", "ArnEquals"):
            return text in wanted
        if base in ("StringLike", "ArnLike"):
            return any(fnmatchcase(text, pattern) for pattern in wanted)
        if base == "NumericLessThanEquals":
            return any(float(text) <= float(limit) for limit in wanted)
        if base == "Bool":
            return text.lower() in (w.lower() for w in wanted)
        raise NotImplementedError(f"condition operator {operator}")

    values = _listed(context[key])
    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    if qualifier == "ForAnyValue":
        return any(one(v) for v in values)
    return one(values[0])


def allows(statements: list[dict[str, Any]], action: str, resource: str, context: Mapping[str, Any]) -> bool:
    """Whether an Allow statement grants ``action`` on ``resource`` with the request ``context``."""
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        if not any(fnmatchcase(action, a) for a in _listed(statement["Action"])):
            continue
        if not any(fnmatchcase(resource, r) for r in _listed(statement["Resource"])):
            continue
        conditions = statement.get("Condition", {})
        if all(_holds(op, key, value, context) for op, keys in conditions.items() for key, value in keys.items()):
            return True
    return False
