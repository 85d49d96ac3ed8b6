"""Every model x region x instance type the catalog knows, accepted or refused by pure functions.

No synthesis here: `deployment_problem()` is the one check the config and the endpoint construct
both call, so checking it over every combination checks what synth accepts. Expected values are
literals taken from AWS's published data (via cfn-lint) and JumpStart's specs, not recomputed
from the tables under test.
"""

from __future__ import annotations

import json
from datetime import date

import pytest

from jumpstream.catalog_sources import cfn_lint_version, sections_from_cfn_lint
from stacks.availability import AVAILABILITY_PATH, load_availability
from stacks.catalog import deployment_problem, load_catalog, region_problem
from stacks.config import resolve_environment
from stacks.errors import ConfigError

CATALOG = load_catalog()
AVAILABILITY = load_availability()
# Every region any table mentions, plus the ones JumpStart's specs mention.
UNIVERSE = sorted(
    set(AVAILABILITY.hosting)
    | {r for m in CATALOG.models.values() for r in m.image_regions}
    | {"mars-1"}
)

# SageMaker hosting, from AWS's pricing data (cfn-lint 1.58): where the large GPU types exist.
P4DE = {"us-east-1", "us-west-2", "ap-northeast-1", "eu-central-1"}
P5 = {
    "us-east-1", "us-east-2", "us-west-2", "ap-southeast-2", "ca-central-1", "eu-west-2",
    "sa-east-1",
}  # fmt: skip
P4D = {
    "ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1", "ap-southeast-2",
    "ca-central-1", "eu-central-1", "eu-west-1", "eu-west-2", "sa-east-1", "us-east-1",
    "us-east-2", "us-gov-west-1", "us-west-2",
}  # fmt: skip
# Regions where JumpStart hosts the artifacts but SageMaker hosting offers no g5 at all.
NO_G5 = {
    "af-south-1", "ap-northeast-3", "eu-south-1", "eu-west-3", "us-west-1", "cn-northwest-1",
    "me-south-1", "us-gov-east-1", "us-gov-west-1",
}  # fmt: skip
# Every size of g6, xlarge to 48xlarge (Llama 3.x's on LMI); us-gov-east-1's CloudFormation has no
# SageMaker types, so no model deploys there whatever it offers.
G6 = {
    "ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-2", "ap-southeast-5",
    "ca-central-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-2", "eu-west-1",
    "eu-west-2", "eu-west-3", "sa-east-1", "us-east-1", "us-east-2", "us-gov-east-1",
    "us-gov-west-1", "us-west-2",
}  # fmt: skip
G5_REGIONS = (
    "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-south-1", "ap-southeast-1",
    "ap-southeast-2", "ap-southeast-3", "ca-central-1", "cn-north-1", "eu-central-1",
    "eu-north-1", "eu-west-1", "eu-west-2", "il-central-1", "sa-east-1", "us-east-1",
    "us-east-2", "us-west-2",
)  # fmt: skip
EXPECTED_REGIONS = {
    "huggingface-llm-falcon-7b-bf16": G5_REGIONS,
    "huggingface-llm-falcon-7b-instruct-bf16": G5_REGIONS,
    # p4d.24xlarge is offered for hosting in us-gov-west-1: only the 40B models run there.
    "huggingface-llm-falcon-40b-bf16": tuple(sorted((*G5_REGIONS, "us-gov-west-1"))),
    "huggingface-llm-falcon-40b-instruct-bf16": tuple(sorted((*G5_REGIONS, "us-gov-west-1"))),
    "huggingface-llm-falcon-180b-bf16": tuple(sorted(P4DE | P5)),
    "huggingface-llm-falcon-180b-chat-bf16": tuple(sorted(P4DE | P5)),
    "huggingface-llm-mistral-7b": G5_REGIONS,
    "huggingface-llm-mistral-7b-instruct": G5_REGIONS,
    "huggingface-llm-rinna-3-6b-instruction-ppo-bf16": G5_REGIONS,
    "huggingface-llm-bilingual-rinna-4b-instruction-ppo-bf16": G5_REGIONS,
    # The LMI models (JumpStart's specs of 2026-07-31): g5, and p4d (and g6) in us-gov-west-1;
    # the Llama 3 ones g6 as well, which adds eu-west-3 (no g5 there).
    "meta-textgeneration-llama-3-1-8b-instruct": tuple(
        sorted((*G5_REGIONS, "us-gov-west-1", "eu-west-3"))
    ),
    "huggingface-llm-qwen2-7b-instruct": tuple(sorted((*G5_REGIONS, "us-gov-west-1"))),
    # p4de and p5 only; its spec's images in ap-northeast-3 and ap-southeast-3 are DeepSpeed
    # ones (not LMI), but no p4de or p5 is offered there anyway.
    "huggingface-llm-mistralai-mixtral-8x22B-instruct-v0-1": tuple(sorted(P4DE | P5)),
    "meta-textgeneration-llama-3-2-3b-instruct": tuple(
        sorted((*G5_REGIONS, "us-gov-west-1", "eu-west-3"))
    ),
    "huggingface-llm-llama3-8b-sealionv21-instruct": tuple(
        sorted((*G5_REGIONS, "us-gov-west-1", "eu-west-3"))
    ),
}


def test_model_regions_are_where_an_image_and_an_offered_type_meet() -> None:
    assert {m.id: m.regions for m in CATALOG.models.values()} == EXPECTED_REGIONS
    seeds = list(EXPECTED_REGIONS.values())[:10]  # the ten TGI models come first
    assert sum(len(r) for r in seeds) == 164  # of the 266 listed before
    assert sum(len(r) for r in EXPECTED_REGIONS.values()) == 164 + 20 + 19 + 9 + 20 + 20


def test_the_hosting_table_says_what_aws_pricing_data_says() -> None:
    for region in UNIVERSE:
        assert AVAILABILITY.offers(region, "ml.p4de.24xlarge") == (region in P4DE), region
        assert AVAILABILITY.offers(region, "ml.p5.48xlarge") == (region in P5), region
        assert AVAILABILITY.offers(region, "ml.p4d.24xlarge") == (region in P4D), region
    for region in NO_G5:
        assert not any(AVAILABILITY.offers(region, f"ml.g5.{s}") for s in ("xlarge", "2xlarge"))
    assert all(AVAILABILITY.offers(r, "ml.g5.48xlarge") for r in G5_REGIONS)


def test_the_mistral_specs_name_no_image_in_cn_northwest_1() -> None:
    for model_id in ("huggingface-llm-mistral-7b", "huggingface-llm-mistral-7b-instruct"):
        model = CATALOG.get(model_id)
        assert "cn-northwest-1" not in model.image_regions
        assert not any(r.startswith("us-gov-") for r in model.image_regions)
        problem = region_problem(model, "cn-northwest-1", AVAILABILITY)
        assert problem is not None
        assert "names no image in cn-northwest-1" in problem


CASES = [
    (model, region, instance_type)
    for model in CATALOG.models.values()
    for region in UNIVERSE
    for instance_type in model.instance_types
]


def test_every_combination_is_accepted_exactly_where_it_can_deploy() -> None:
    """All ~1,900 model x region x instance type combinations, each against the literal facts."""
    accepted = set()
    for model, region, instance_type in CASES:
        problem = deployment_problem(model, region, instance_type, AVAILABILITY)
        family = instance_type.rsplit(".", 1)[0]
        can = region in EXPECTED_REGIONS[model.id] and (
            (family == "ml.g5" and region in G5_REGIONS)
            or (family == "ml.p4de" and region in P4DE)
            or (family == "ml.p5" and region in P5)
            or (family == "ml.p4d" and region in P4D)
            or (family == "ml.g6" and region in G6)
        )
        assert (problem is None) == can, (model.id, region, instance_type, problem)
        if problem is None:
            accepted.add((model.id, region, instance_type))
        else:
            assert "\n" not in problem
    # regions x (model, instance type) pairs: the ten TGI models' 38, the LMI models' 12 + 8 + 2
    # + 18 + 12 (Llama 3.1, Qwen2, Mixtral, Llama 3.2, SEA-LION)
    assert len(CASES) == 39 * (38 + 52)
    chat = "huggingface-llm-falcon-180b-chat-bf16"
    assert (chat, "eu-west-1", "ml.p4de.24xlarge") not in accepted
    assert ("huggingface-llm-falcon-40b-bf16", "us-gov-west-1", "ml.p4d.24xlarge") in accepted


def test_a_refused_instance_type_names_where_it_is_offered_and_what_is_offered_here() -> None:
    model = CATALOG.get("huggingface-llm-falcon-180b-chat-bf16")
    problem = deployment_problem(model, "us-east-2", "ml.p4de.24xlarge", AVAILABILITY)
    assert problem == (
        "SageMaker hosting does not offer ml.p4de.24xlarge in us-east-2 (it does in "
        "ap-northeast-1, eu-central-1, us-east-1, us-west-2); of "
        "huggingface-llm-falcon-180b-chat-bf16's instance types us-east-2 offers: ml.p5.48xlarge"
    )


def test_a_region_without_any_offered_type_is_refused_by_name() -> None:
    model = CATALOG.get("huggingface-llm-falcon-180b-chat-bf16")
    problem = deployment_problem(model, "eu-west-1", "ml.p4de.24xlarge", AVAILABILITY)
    assert problem is not None
    assert problem.startswith(
        "huggingface-llm-falcon-180b-chat-bf16 cannot run in eu-west-1: SageMaker hosting offers "
        "none of its instance types (ml.p4de.24xlarge, ml.p5.48xlarge) in eu-west-1; "
        "choose a region among: ap-northeast-1, "
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"model_id": "huggingface-llm-falcon-180b-chat-bf16", "region": "eu-west-1"},
            "region 'eu-west-1' does not host huggingface-llm-falcon-180b-chat-bf16: SageMaker "
            "hosting offers none of its instance types",
        ),
        (
            {"model_id": "huggingface-llm-falcon-180b-bf16", "region": "us-east-2"},
            "of huggingface-llm-falcon-180b-bf16's instance types us-east-2 offers: "
            "ml.p5.48xlarge (the default is ml.p4de.24xlarge: set instance_type)",
        ),
        (
            {"model_id": "huggingface-llm-mistral-7b", "region": "cn-northwest-1"},
            "its JumpStart spec 2.5.0 names no image in cn-northwest-1",
        ),
        (
            {"model_id": "huggingface-llm-falcon-7b-bf16", "region": "eu-west-3"},
            "SageMaker hosting offers none of its instance types",
        ),
    ],
)
def test_the_config_refuses_with_the_same_one_line(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_environment("x", {**settings, "relay": {"enabled": False}})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_model_whose_default_is_offered_nowhere_it_runs_is_accepted_with_another_type() -> None:
    config = resolve_environment(
        "x",
        {
            "model_id": "huggingface-llm-falcon-180b-bf16",
            "region": "us-east-2",
            "instance_type": "ml.p5.48xlarge",
            "relay": {"enabled": False},
        },
    )
    assert config.instance_type == "ml.p5.48xlarge"


def test_the_committed_tables_are_what_their_source_gives() -> None:
    """The hosting and CloudFormation tables equal what the pinned cfn-lint's data yields, so
    bumping cfn-lint without `catalog refresh --write` fails here, not at deploy."""
    doc = json.loads(AVAILABILITY_PATH.read_text())
    hosting = doc["sagemaker_hosting"]
    assert hosting["source"].startswith(f"cfn-lint {cfn_lint_version()}: ")
    date.fromisoformat(hosting["retrieved"])
    fresh = sections_from_cfn_lint(hosting["families"], hosting["retrieved"])
    assert fresh["sagemaker_hosting"] == hosting
    # Each section keeps its own date: refresh re-dates only a section whose content changed.
    registry = doc["cloudformation"]
    date.fromisoformat(registry["retrieved"])
    fresh_registry = sections_from_cfn_lint(hosting["families"], registry["retrieved"])
    assert fresh_registry["cloudformation"] == registry
    families = {t.rsplit(".", 1)[0] for m in CATALOG.models.values() for t in m.instance_types}
    assert set(hosting["families"]) == families


# The relay's platform: function URLs (documented, and in CloudFormation's registry), the
# Lambda Web Adapter 1.1.0 arm64 layer (the adapter's own release list), Python 3.14 on arm64.
RELAY_REGIONS = {
    "af-south-1", "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-south-1", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ca-central-1",
    "eu-central-1", "eu-north-1", "eu-south-1", "eu-west-1", "eu-west-2", "eu-west-3",
    "sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
}  # fmt: skip
NO_FUNCTION_URLS = {
    "ap-south-2", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
    "ap-east-2", "ca-west-1", "eu-south-2", "eu-central-2", "il-central-1", "me-central-1",
    "cn-north-1", "cn-northwest-1",
}  # fmt: skip


def test_the_relay_runs_exactly_where_its_whole_platform_exists() -> None:
    for region in UNIVERSE:
        reason = AVAILABILITY.relay_unavailable_reason(region)
        assert (reason is None) == (region in RELAY_REGIONS), (region, reason)
        if region in NO_FUNCTION_URLS:
            assert reason == f"Lambda function URLs are not offered in {region}"
    # The adapter's release workflow dropped me-south-1 before 1.0.0 and me-central-1 before
    # 1.1.0 (which has no function URLs either); GovCloud never had it.
    assert "me-central-1" not in AVAILABILITY.web_adapter.regions
    assert len(AVAILABILITY.web_adapter.regions) == 32  # "all 32 deploy-prod regions" (#871)
    for region in ("me-south-1", "us-gov-west-1", "us-gov-east-1"):
        assert AVAILABILITY.relay_unavailable_reason(region) == (
            f"the AWS Lambda Web Adapter 1.1.0 layer the relay runs on is not published in {region}"
        )
    assert AVAILABILITY.relay_unavailable_reason("mx-central-1") == (
        "CloudFormation does not offer Lambda function URLs in mx-central-1"
    )
    assert AVAILABILITY.web_adapter.arm64_arn("eu-west-1") == (
        "arn:aws:lambda:eu-west-1:753240598075:layer:LambdaAdapterLayerArm64:30"
    )


def test_a_region_without_python_314_on_arm64_is_refused() -> None:
    from dataclasses import replace

    without = replace(AVAILABILITY, python314_arm64=AVAILABILITY.python314_arm64 - {"eu-west-1"})
    assert without.relay_unavailable_reason("eu-west-1") == (
        "Lambda's Python 3.14 runtime on arm64 is not offered in eu-west-1"
    )


def test_every_model_region_either_gets_a_relay_or_is_told_to_turn_it_off() -> None:
    for model in CATALOG.models.values():
        for region in model.regions:
            settings: dict = {"model_id": model.id, "region": region}
            if model.gated:
                settings["accept_eula"] = True
            if region == "us-gov-west-1":  # no g5 there; the 40B and LMI models run on p4d
                settings["instance_type"] = "ml.p4d.24xlarge"
            if model.default_instance_type == "ml.p4de.24xlarge" and region not in P4DE:
                settings["instance_type"] = "ml.p5.48xlarge"
            if model.default_instance_type == "ml.g6.xlarge" and region not in G6:
                settings["instance_type"] = "ml.g5.xlarge"  # Llama 3.2 3B where no g6 is offered
            if region == "eu-west-3":  # no g5 there: the Llama 3 models run on g6
                settings["instance_type"] = "ml.g6.12xlarge"
            if region in RELAY_REGIONS:
                assert resolve_environment("r", settings).relay.enabled
            else:
                with pytest.raises(ConfigError, match=r"; set relay\.enabled = false to deploy"):
                    resolve_environment("r", settings)
                off = resolve_environment("r", {**settings, "relay": {"enabled": False}})
                assert not off.relay.enabled


def test_a_region_whose_cloudformation_lacks_sagemaker_is_refused() -> None:
    """me-central-1 offers g5 for hosting, but CloudFormation's registry there has no
    AWS::SageMaker::Model/EndpointConfig/Endpoint: a model with an image there is refused."""
    from dataclasses import replace

    falcon = CATALOG.get("huggingface-llm-falcon-7b-bf16")
    model = replace(falcon, image_regions=(*falcon.image_regions, "me-central-1"))
    assert AVAILABILITY.offers("me-central-1", "ml.g5.2xlarge")
    assert region_problem(model, "me-central-1", AVAILABILITY) == (
        "CloudFormation does not offer the SageMaker resource types in me-central-1"
    )
    # us-gov-east-1 lacks both: the hosting fact is named first.
    assert "SageMaker hosting offers none" in str(
        region_problem(model, "us-gov-east-1", AVAILABILITY)
    )
