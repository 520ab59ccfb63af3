"""tests/support/moto_iam.py's patches fit the pinned moto, say so loudly when they do not, and are
undone after their ``with`` block."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from moto.apigateway.models import RestAPI
from moto.cloudformation import parsing
from moto.iam import access_control
from moto.iam.models import Role
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.sqs.responses import SQSResponse

from tests.support import moto_iam
from tests.support.moto_iam import PATCHES, SECRET_TYPE, MotoPatchError


def test_each_patch_fits_the_installed_moto() -> None:
    for patch in PATCHES:
        patch.check()


def _does_nothing(*_args: Any, **_kwargs: Any) -> None:
    return None


BREAKAGES: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "rest_api_from_body": lambda mp: mp.setattr(RestAPI, "create_from_cloudformation_json", classmethod(_does_nothing)),
    "role_policies_as_json": lambda mp: mp.setattr(Role, "create_from_cloudformation_json", classmethod(_does_nothing)),
    "sqs_batch_actions": lambda mp: mp.setattr(access_control.IAMRequestBase, "check_action_permitted", _does_nothing),
    "sqs_create_queue_arn": lambda mp: mp.delattr(SQSResponse, "_determine_resource"),
    # moto's CloudFormation learns secrets, and its Secrets Manager names a call's resource itself.
    "secret_from_cloudformation": lambda mp: mp.setattr(parsing, "get_model_map", lambda: {SECRET_TYPE: object}),
    "secretsmanager_secret_arn": lambda mp: mp.setattr(
        SecretsManagerResponse, "_determine_resource", _does_nothing, raising=False
    ),
}


def test_every_patch_has_a_breakage_here() -> None:
    assert set(BREAKAGES) == {patch.name for patch in PATCHES}


@pytest.mark.parametrize("name", sorted(BREAKAGES))
def test_a_patch_that_no_longer_fits_fails_loudly_naming_it(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    BREAKAGES[name](monkeypatch)  # moto "upgraded": an internal the patch relies on changed
    with pytest.raises(MotoPatchError, match=f"moto patch '{name}' does not fit"):
        next(patch for patch in PATCHES if patch.name == name).check()
    before = {(p.owner, p.attribute): p.owner.__dict__.get(p.attribute) for p in PATCHES}
    with pytest.raises(MotoPatchError, match=name), moto_iam.patched():
        pass  # checks all of them before applying any
    assert {(p.owner, p.attribute): p.owner.__dict__.get(p.attribute) for p in PATCHES} == before


def test_the_patches_are_undone_after_their_block() -> None:
    absent = object()  # an attribute a patch adds (it is taken away again)
    before = {(p.owner, p.attribute): p.owner.__dict__.get(p.attribute, absent) for p in PATCHES}
    with moto_iam.patched():
        assert all(p.owner.__dict__.get(p.attribute, absent) is not before[(p.owner, p.attribute)] for p in PATCHES)
    assert {(p.owner, p.attribute): p.owner.__dict__.get(p.attribute, absent) for p in PATCHES} == before
