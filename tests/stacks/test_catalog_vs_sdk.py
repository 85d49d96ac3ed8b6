"""The catalog's image registries agree with the SageMaker Python SDK v3's offline image table.

`sagemaker.core.image_uris.retrieve` resolves the Hugging Face TGI image from a table shipped
inside sagemaker-core (no network). Two independent sources agreeing on account and domain in
every region is what keeps a wrong account from reaching a deploy.
"""

from __future__ import annotations

from functools import cache

import pytest
from sagemaker.core import image_uris

from stacks.catalog import load_catalog

# The SDK's table is TGI's (framework huggingface-llm); LMI's and vLLM's repositories share its
# accounts, which test_catalog.py checks against the LMI specs' own image URIs.
MODELS = sorted(
    (m for m in load_catalog().models.values() if m.engine == "tgi"), key=lambda m: m.id
)
# The SDK's tag coincides with JumpStart's pinned tag for these TGI versions; for 2.4.0 the
# SDK appends a DLC patch suffix (-v2.x) that JumpStart's spec does not pin.
SAME_TAG_VERSIONS = {"1.4.0", "2.0.0"}


@cache
def sdk_uri(tgi_version: str, region: str, instance_type: str) -> str:
    return image_uris.retrieve(
        framework="huggingface-llm",
        region=region,
        version=tgi_version,
        image_scope="inference",
        instance_type=instance_type,
    )


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.id)
def test_registry_account_and_domain_match_the_sdk_in_every_region(model) -> None:
    for region in model.regions:
        ours = model.image_uri(region)
        theirs = sdk_uri(model.engine_version, region, model.default_instance_type)
        assert ours.split("/")[0] == theirs.split("/")[0], region
        assert ours.split("/")[1].split(":")[0] == theirs.split("/")[1].split(":")[0]
        if model.engine_version in SAME_TAG_VERSIONS:
            assert ours == theirs, region
        else:
            assert theirs.split(":")[1].startswith(model.image_tag), region


def test_the_tag_rule_covers_every_model() -> None:
    versions = {m.engine_version for m in MODELS}
    assert versions == {"1.4.0", "2.0.0", "2.4.0"}
