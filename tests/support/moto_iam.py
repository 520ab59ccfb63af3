"""moto's CloudFormation and IAM enforcement, patched just enough to create the packaged stack and
check each role's own calls against the policies CloudFormation gave it (tests only).

moto 5.2.5 (pinned) needs six small patches for that; each has a check that the moto internals
it relies on still have the shape it expects, run before it is applied, so a moto upgrade that
changes them fails loudly (:class:`MotoPatchError`) instead of testing with the patch silently
not applied (as ``iraas/local/moto_app.py`` does for the embedded stack's patches):

``rest_api_from_body``
    ``AWS::ApiGateway::RestApi.create_from_cloudformation_json`` reads ``Properties.Name``, which
    a RestApi built from ``Body`` (SAM's, from chalice's Swagger) does not have: AWS takes the name
    from the definition's ``info.title``, and so does the patch. The Body itself is not imported
    (moto imports OpenAPI 3 only), so the API has no methods.
``role_policies_as_json``
    ``AWS::IAM::Role.create_from_cloudformation_json`` keeps each inline policy as the parsed
    template's dict, where ``PutRolePolicy`` keeps JSON text, and moto's enforcement
    (``IAMPolicy``) reads a role's inline policies as text only: a role from a stack cannot be
    used at all. The patch puts each policy again through ``put_role_policy`` (which also checks
    the document, as IAM does), as JSON text.
``sqs_batch_actions``
    moto authorises an SQS batch call as its own action (``sqs:DeleteMessageBatch``); AWS has no
    such actions, it authorises ``SendMessageBatch``, ``DeleteMessageBatch`` and
    ``ChangeMessageVisibilityBatch`` as ``SendMessage``, ``DeleteMessage`` and
    ``ChangeMessageVisibility`` (the SQS developer guide's list of actions). The patch asks the
    policies for those.
``sqs_create_queue_arn``
    moto names the resource of an SQS call by its ``QueueUrl``; ``CreateQueue`` has none, so moto
    asks about ``*`` and a policy that grants ``CreateQueue`` on a name prefix (the web tier's
    reply queues) never matches. AWS authorises it on the ARN of the queue to be created, and so
    does the patch.
``secret_from_cloudformation``
    moto's CloudFormation has no ``AWS::SecretsManager::Secret`` (it skips the resource with a
    warning, and a ``Ref`` to it is empty). The patch creates it in moto's Secrets Manager as
    CloudFormation does: its Name or a generated one, Description, KmsKeyId, and SecretString or a
    value made as ``GenerateSecretString`` says; ``Ref`` gives its ARN.
``secretsmanager_secret_arn``
    moto asks about ``*`` for every Secrets Manager call, so a policy that names a secret's ARN
    (``GetSecretValue`` on the webhook secret) never matches. AWS authorises a call on the ARN of the
    secret its ``SecretId`` names, and so does the patch.

What moto's enforcement does and does not check (moto 5.2.5, ``moto/iam/access_control.py``):
identity policies of IAM users and assumed roles, Allow and Deny, actions with wildcards, and
resource ARNs for S3, SQS, IAM, STS and (with the patch) Secrets Manager only (other services ask
about ``*``). Conditions are not evaluated (moto knows ``StringEquals`` only, with no request values
to compare): a conditioned Allow counts as granted. Resource policies (bucket policies, key
policies), trust policies of roles assumed without enforcement, lifecycle rules and notifications
are not checked; those are tested elsewhere. Nor is KMS: moto's Secrets Manager does not encrypt
with the secret's key, so the ``kms:Decrypt`` a reader of a secret needs is never asked for.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.apigateway.models import RestAPI
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.core.responses import BaseResponse
from moto.iam import access_control
from moto.iam.models import IAMBackend, Role, iam_backends
from moto.secretsmanager.models import SecretsManagerBackend, secretsmanager_backends
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.secretsmanager.utils import random_password
from moto.sqs.responses import SQSResponse
from moto.utilities.utils import get_partition


class MotoPatchError(RuntimeError):
    """A patch no longer fits the installed moto: its internals changed shape."""


@dataclass(frozen=True)
class Patch:
    name: str
    check: Callable[[], None]  # raises MotoPatchError when the patch no longer fits
    owner: Any
    attribute: str
    replacement: Callable[[Any], Any]  # moto's original (None where it has none) -> what replaces it


def _require(patch: str, condition: bool, what: str) -> None:
    if not condition:
        raise MotoPatchError(
            f"moto patch {patch!r} does not fit the installed moto: {what}. "
            "Update tests/support/moto_iam.py for this moto version, or pin moto back."
        )


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""  # the check then fails, loudly


# --- rest_api_from_body ----------------------------------------------------------------------

def check_rest_api_from_body() -> None:
    name = "rest_api_from_body"
    source = _source(RestAPI.create_from_cloudformation_json)
    _require(name, 'properties["Name"]' in source, "RestAPI.create_from_cloudformation_json no longer reads Name")


def rest_api_from_body(original: Any) -> Any:
    function = original.__func__  # moto's classmethod, as the class holds it

    def create_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Any:
        properties = cloudformation_json["Properties"]
        if "Name" not in properties and "Body" in properties:
            properties = {**properties, "Name": properties["Body"]["info"]["title"]}
            cloudformation_json = {**cloudformation_json, "Properties": properties}
        return function(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    return classmethod(create_from_cloudformation_json)


# --- role_policies_as_json -------------------------------------------------------------------

def check_role_policies_as_json() -> None:
    name = "role_policies_as_json"
    source = _source(Role.create_from_cloudformation_json)
    _require(name, "role.put_policy(policy_name, policy_json)" in source,
             "Role.create_from_cloudformation_json no longer puts the template's policies on the role")
    _require(name, "isinstance(policy, str)" in _source(access_control.IAMPolicy.__init__),
             "IAMPolicy no longer reads a policy given as text")
    _require(name, callable(getattr(IAMBackend, "put_role_policy", None)),
             "IAMBackend.put_role_policy is gone")


def role_policies_as_json(original: Any) -> Any:
    function = original.__func__  # moto's classmethod, as the class holds it

    def create_from_cloudformation_json(cls: Any, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **kwargs: Any) -> Any:
        role = function(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        backend = iam_backends[account_id][get_partition(region_name)]
        for policy_name, document in list(role.policies.items()):
            if not isinstance(document, str):
                backend.put_role_policy(role.name, policy_name, json.dumps(document))
        return role

    return classmethod(create_from_cloudformation_json)


# --- sqs_batch_actions -----------------------------------------------------------------------

# The action AWS authorises each SQS batch call as.
SQS_BATCH_ACTIONS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


def check_sqs_batch_actions() -> None:
    name = "sqs_batch_actions"
    base = access_control.IAMRequestBase
    _require(name, "self._action = (" in _source(base.__init__), "IAMRequestBase no longer keeps the action in _action")
    _require(name, "self._action" in _source(base.check_action_permitted),
             "IAMRequestBase.check_action_permitted no longer reads _action")


def sqs_batch_actions(original: Any) -> Any:
    def check_action_permitted(self: Any, resource: str) -> None:
        self._action = SQS_BATCH_ACTIONS.get(self._action, self._action)
        original(self, resource)

    return check_action_permitted


# --- sqs_create_queue_arn --------------------------------------------------------------------

def check_sqs_create_queue_arn() -> None:
    name = "sqs_create_queue_arn"
    _require(name, "_determine_resource" in SQSResponse.__dict__, "SQSResponse no longer names the resource of a call")
    _require(name, 'self._get_param("QueueName")' in _source(SQSResponse.create_queue),
             "SQSResponse.create_queue no longer reads QueueName")
    _require(name, "_determine_resource" in _source(BaseResponse.call_action),
             "BaseResponse.call_action no longer asks for the resource to authorise")


def sqs_create_queue_arn(original: Any) -> Any:
    def _determine_resource(self: Any) -> str:
        if self._get_action() == "CreateQueue":
            name = self._get_param("QueueName")
            return f"arn:{get_partition(self.region)}:sqs:{self.region}:{self.current_account}:{name}"
        return str(original(self))

    return _determine_resource


# --- secret_from_cloudformation --------------------------------------------------------------

SECRET_TYPE = "AWS::SecretsManager::Secret"


def check_secret_from_cloudformation() -> None:
    name = "secret_from_cloudformation"
    _require(name, SECRET_TYPE not in parsing.get_model_map(), "moto's CloudFormation creates secrets now: drop the patch")
    for caller in (parsing.parse_resource, parsing.parse_and_delete_resource):
        _require(name, "resource_class_from_type(resource_type)" in _source(caller),
                 f"{caller.__name__} no longer looks the resource's class up by its type")
    _require(name, "if not resource_tuple:" in _source(parsing.parse_resource_and_generate_name),
             "a resource of an unknown type is no longer left out")
    for method, arguments in ((SecretsManagerBackend.create_secret, ("name", "secret_string", "kms_key_id", "force_overwrite")),
                              (SecretsManagerBackend.delete_secret, ("secret_id", "force_delete_without_recovery"))):
        parameters = inspect.signature(method).parameters
        _require(name, all(a in parameters for a in arguments), f"SecretsManagerBackend.{method.__name__} changed its arguments")
    _require(name, "exclude_punctuation" in inspect.signature(random_password).parameters,
             "moto.secretsmanager.utils.random_password changed its arguments")


def _generated_value(generate: dict[str, Any]) -> str:
    """What CloudFormation makes of ``GenerateSecretString`` (its defaults as the API's)."""
    value = random_password(
        int(generate.get("PasswordLength", 32)), str(generate.get("ExcludeCharacters", "")),
        bool(generate.get("ExcludeNumbers", False)), bool(generate.get("ExcludePunctuation", False)),
        bool(generate.get("ExcludeUppercase", False)), bool(generate.get("ExcludeLowercase", False)),
        bool(generate.get("IncludeSpace", False)), bool(generate.get("RequireEachIncludedType", True)),
    )
    if "SecretStringTemplate" in generate:  # a JSON object with the value under GenerateStringKey
        return json.dumps({**json.loads(generate["SecretStringTemplate"]), generate["GenerateStringKey"]: value})
    return value


class StackSecret:
    """An ``AWS::SecretsManager::Secret`` of a stack, kept in moto's Secrets Manager."""

    def __init__(self, arn: str) -> None:
        self.arn = arn

    @property
    def physical_resource_id(self) -> str:
        return self.arn  # Ref: the secret's ARN

    def is_created(self) -> bool:
        return True  # at once, as moto's own models

    @classmethod
    def has_cfn_attr(cls, attribute: str) -> bool:
        return attribute == "Id"

    def get_cfn_attribute(self, attribute: str) -> str:
        if attribute == "Id":
            return self.arn
        raise UnformattedGetAttTemplateException()

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str, **_: Any) -> StackSecret:
        properties = cloudformation_json["Properties"]
        value = properties.get("SecretString")
        if value is None:
            value = _generated_value(properties.get("GenerateSecretString") or {})
        created = secretsmanager_backends[account_id][region_name].create_secret(
            name=properties.get("Name", resource_name), secret_string=value, secret_binary=None,
            description=properties.get("Description"), tags=properties.get("Tags"),
            kms_key_id=properties.get("KmsKeyId"), client_request_token=None, replica_regions=[],
            force_overwrite=False,
        )
        return cls(json.loads(created)["ARN"])

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> None:
        secretsmanager_backends[account_id][region_name].delete_secret(
            secret_id=resource_name, recovery_window_in_days=None, force_delete_without_recovery=True)

    def delete(self, account_id: str, region_name: str) -> None:
        self.delete_from_cloudformation_json(self.arn, {}, account_id, region_name)


def secret_from_cloudformation(original: Any) -> Any:
    def resource_class_from_type(resource_type: str) -> Any:
        return StackSecret if resource_type == SECRET_TYPE else original(resource_type)

    return resource_class_from_type


# --- secretsmanager_secret_arn -----------------------------------------------------------------

def check_secretsmanager_secret_arn() -> None:
    name = "secretsmanager_secret_arn"
    _require(name, "_determine_resource" not in SecretsManagerResponse.__dict__,
             "SecretsManagerResponse names the resource of a call itself now: drop the patch")
    _require(name, 'self._get_param("SecretId")' in _source(SecretsManagerResponse.get_secret_value),
             "SecretsManagerResponse.get_secret_value no longer reads SecretId")
    _require(name, "_determine_resource" in _source(BaseResponse.call_action),
             "BaseResponse.call_action no longer asks for the resource to authorise")


def secretsmanager_secret_arn(original: Any) -> Any:
    def _determine_resource(self: Any) -> str:
        secret_id = self._get_param("SecretId")
        secret = self.backend.secrets.get(secret_id) if isinstance(secret_id, str) else None
        return secret.arn if secret is not None else "*"  # a call on no one secret, or one that is not there

    return _determine_resource


PATCHES = (
    Patch("rest_api_from_body", check_rest_api_from_body, RestAPI, "create_from_cloudformation_json",
          rest_api_from_body),
    Patch("role_policies_as_json", check_role_policies_as_json, Role, "create_from_cloudformation_json",
          role_policies_as_json),
    Patch("sqs_batch_actions", check_sqs_batch_actions, access_control.IAMRequestBase, "check_action_permitted",
          sqs_batch_actions),
    Patch("sqs_create_queue_arn", check_sqs_create_queue_arn, SQSResponse, "_determine_resource",
          sqs_create_queue_arn),
    Patch("secret_from_cloudformation", check_secret_from_cloudformation, parsing, "resource_class_from_type",
          secret_from_cloudformation),
    Patch("secretsmanager_secret_arn", check_secretsmanager_secret_arn, SecretsManagerResponse, "_determine_resource",
          secretsmanager_secret_arn),
)

_ABSENT = object()  # an attribute the patch adds: taken away again afterwards


@contextmanager
def patched() -> Iterator[None]:
    """moto with the patches, for the ``with`` block; moto as it was afterwards."""
    for patch in PATCHES:
        patch.check()
    saved = [(patch, vars(patch.owner).get(patch.attribute, _ABSENT)) for patch in PATCHES]
    try:
        for patch, original in saved:
            setattr(patch.owner, patch.attribute, patch.replacement(None if original is _ABSENT else original))
        yield
    finally:
        for patch, original in saved:
            if original is _ABSENT:
                delattr(patch.owner, patch.attribute)
            else:
                setattr(patch.owner, patch.attribute, original)
