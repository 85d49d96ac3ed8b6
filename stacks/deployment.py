"""What one environment deploys, as plain values: standard library only.

The config (config.py) reads `environments.toml` into these types and the constructs take them;
nothing here imports CDK, so `import stacks.config` (and every command that only reads the
environments, such as `cost` and `ask --env`) never starts jsii and Node. Everything derived from
an environment's settings (its endpoint's name, the fleet an update may find, how long a cold
start may take) is a property or a pure function here, computed the same way by the stacks, the
command line and the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from streamer.contract import MAX_NEW_TOKENS_LIMIT

from stacks.availability import RelayPlatform
from stacks.catalog import Model

__all__ = [
    "API_KEYS_TABLE_OUTPUT",
    "API_KEY_AUTH",
    "AUTH_TYPES",
    "AUTH_TYPE_OUTPUT",
    "COMPONENT_HOSTING",
    "CREATE_LIMIT_MINUTES",
    "HOSTING_MODES",
    "HOURS_PER_MONTH",
    "IDLE_TO_ZERO_SECONDS",
    "INSTANCE_HOSTING",
    "INSTANCE_LAUNCH_SECONDS",
    "LMI_CONCURRENCY_PER_VCPU",
    "LMI_STARTING_INSTANCES",
    "RELAY_URL_OUTPUT",
    "RETENTION_DAYS",
    "VARIANT_NAME",
    "WAKE_UP_COOLDOWN_SECONDS",
    "AlarmThresholds",
    "EnvironmentConfig",
    "Fleet",
    "LambdaManagedInstances",
    "ManagedInstances",
    "RelayConfig",
    "RelayTarget",
    "ScalingConfig",
    "ScalingSchedule",
    "UpdatePolicy",
    "cold_start_limit_seconds",
    "instance_vcpus",
    "start_limit_problem",
    "update_policy",
]

#: The hours of an average month (365 days x 24 h / 12): what an instance bills in one.
HOURS_PER_MONTH = 730

#: The one production variant of a jumpstream endpoint (SageMaker's metrics name it too).
VARIANT_NAME = "AllTraffic"

#: The relay stack's output holding the function URL; `ask --env` and `proxy --env` read it.
RELAY_URL_OUTPUT = "Url"
#: The relay stack's output holding its API keys table's name (only with relay.auth =
#: "API_KEY"); `keys --env` reads it as `ask --env` reads the URL.
API_KEYS_TABLE_OUTPUT = "ApiKeysTableName"
#: The relay stack's output holding the environment's relay.auth (one of AUTH_TYPES), so a
#: client can tell how to authenticate to the URL.
AUTH_TYPE_OUTPUT = "AuthType"

#: How an environment hosts its model: `instance` (a variant of one model on its own instances,
#: never below one) or `inference-component` (the model as an inference component, which can
#: scale to zero copies and instances).
INSTANCE_HOSTING = "instance"
COMPONENT_HOSTING = "inference-component"
HOSTING_MODES = (INSTANCE_HOSTING, COMPONENT_HOSTING)

#: relay.auth for callers with one of the environment's API keys: the function URL is open to
#: the internet (its AuthType is NONE) and the function itself refuses callers without a key.
API_KEY_AUTH = "API_KEY"
#: Who may call the function URL: SigV4-signed callers with IAM permission, anyone, or callers
#: with an API key.
AUTH_TYPES = ("AWS_IAM", "NONE", API_KEY_AUTH)

#: Every retention CloudWatch Logs accepts, in days (retention.py maps them to CDK's names).
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)  # fmt: skip

#: How long SageMaker may take to launch an instance for a copy, before the copy's own download
#: and startup. AWS documents no figure; launches take a few minutes, this is a margin above.
INSTANCE_LAUNCH_SECONDS = 600

#: How long a component with no traffic keeps its last copy: target tracking removes it once its
#: scale-in alarm has seen 15 minutes below the target (AWS's account of scale to zero; not
#: confirmed here). A new cold start can come no sooner after a copy started.
IDLE_TO_ZERO_SECONDS = 15 * 60

#: The wake-up step policy's cooldown. While it runs, Application Auto Scaling adds no copy
#: again (it counts the one it just asked for), so it must end before the component can be back
#: at zero, or a caller returning then would be refused until it ended: a third of the idle time
#: leaves room even if that were shorter than AWS says. An alarm with a scaling action repeats
#: it every minute it stays in ALARM, so a cold start longer than this asks for one more copy
#: per cooldown, bounded by max_copies (one by default); target tracking removes any extra copy
#: once callers are served.
WAKE_UP_COOLDOWN_SECONDS = IDLE_TO_ZERO_SECONDS // 3

#: How long CloudFormation waits for a resource to be created before it fails the deploy: the
#: resource type's registry schema sets it (handlers.create.timeoutInMinutes), 120 minutes when
#: the schema sets nothing. The SageMaker schemas (as cfn-lint ships them; a test reads them)
#: give the endpoint 160 minutes and the inference component the default.
CREATE_LIMIT_MINUTES = {
    "AWS::SageMaker::Endpoint": 160,
    "AWS::SageMaker::InferenceComponent": 120,
}

# Rolling updates: each step starts this share of the fleet on the new config, moves its traffic,
# bakes, then stops as many old instances. 50% is the most SageMaker accepts (5-50% of the
# variant's instances): an update needs quota for the running fleet plus half of it, not a second
# fleet. Half of one instance is no instance whichever way SageMaker rounds, so a fleet that may
# be a single instance when an update comes is updated blue/green instead (update_policy).
ROLLING_BATCH_PERCENT = 50
#: How long SageMaker watches the rollback alarms after each step (rolling), or after the traffic
#: moved (blue/green), before it goes on.
BAKE_SECONDS = 600
# SageMaker's limits on a whole update's execution time.
_UPDATE_TIMEOUT_RANGE = (600, 28800)


def cold_start_limit_seconds(model: Model) -> int:
    """The longest a copy may take to come back from zero before SageMaker gives up on it: an
    instance launch, then the model's download and startup timeouts from the catalog."""
    return (
        INSTANCE_LAUNCH_SECONDS
        + model.download_timeout_seconds
        + model.health_check_timeout_seconds
    )


def start_limit_problem(model: Model, *, components: bool) -> str | None:
    """Why CloudFormation could give up on `model`'s first start before SageMaker does, or None.

    The resource whose creation waits for the model is the endpoint (instance hosting) or the
    inference component; either may have to launch an instance, then download and start the
    model, each for as long as the catalog allows.
    """
    resource = "AWS::SageMaker::InferenceComponent" if components else "AWS::SageMaker::Endpoint"
    limit = CREATE_LIMIT_MINUTES[resource]
    needed = math.ceil(cold_start_limit_seconds(model) / 60)
    if needed <= limit:
        return None
    what = "an inference component" if components else "an endpoint"
    alternative = '; use hosting = "instance"' if components else ""
    return (
        f"{model.id} may take up to {needed} minutes to start (instance launch, download and "
        f"startup), more than the {limit} minutes CloudFormation waits for {what} to be "
        f"created{alternative}"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Fleet:
    """The instances an update of an instance-hosted endpoint may find running: between
    `smallest` and `largest`, set by Application Auto Scaling when `autoscaled`."""

    smallest: int
    largest: int
    autoscaled: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdatePolicy:
    """How SageMaker replaces the fleet when the endpoint config changes.

    `rolling_steps` is None for a blue/green update (all traffic moves at once to a complete new
    fleet, which bakes before the old one stops); otherwise the most steps a rolling update may
    take. Either way the rollback alarms are watched while it bakes.
    """

    rolling_steps: int | None
    timeout_seconds: int


def _rolling_steps(instances: int) -> int | None:
    """Steps of a rolling update of `instances` whichever way SageMaker rounds half of them;
    None when half of them may be no instance at all."""
    share = instances * ROLLING_BATCH_PERCENT / 100
    batches = {math.floor(share), math.ceil(share)}
    if min(batches) < 1:
        return None
    return max(math.ceil(instances / batch) for batch in batches)


def update_policy(fleet: Fleet, *, download_seconds: int, startup_seconds: int) -> UpdatePolicy:
    """Rolling in halves when every fleet the update may find has at least two instances;
    blue/green all at once (with the same bake and rollback) when it may find only one, where
    no rolling batch is valid under every reading of SageMaker's 5-50% rule. The time limit
    lets every step download, start and bake."""
    steps = [_rolling_steps(n) for n in range(fleet.smallest, fleet.largest + 1)]
    rolling = None if None in steps else max(s for s in steps if s is not None)
    low, high = _UPDATE_TIMEOUT_RANGE
    step_seconds = download_seconds + startup_seconds + BAKE_SECONDS
    return UpdatePolicy(
        rolling_steps=rolling,
        timeout_seconds=min(high, max(low, (rolling or 1) * step_seconds)),
    )


#: Lambda Managed Instances: the most concurrent requests AWS's scaling guide lets one execution
#: environment take per vCPU (for invocations that use little CPU, as a relayed stream does).
LMI_CONCURRENCY_PER_VCPU = 64
#: Instances Lambda starts when a version is published on a capacity provider (its default
#: three, spread over the zones, for resilience): what a managed-instances relay bills even when
#: nobody calls.
LMI_STARTING_INSTANCES = 3


#: vCPUs of an EC2 instance size, as EC2 names them (metal and patterns: unknown here).
_SIZE_VCPUS = {"medium": 1, "large": 2, "xlarge": 4}


def instance_vcpus(instance_type: str) -> int | None:
    """vCPUs of an EC2 instance type from its size (2xlarge: 8), or None for metal/patterns."""
    size = instance_type.split(".", 1)[1]
    if size in _SIZE_VCPUS:
        return _SIZE_VCPUS[size]
    if size.endswith("xlarge") and size[: -len("xlarge")].isdigit():
        return 4 * int(size[: -len("xlarge")])
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class LambdaManagedInstances:
    """[environments.NAME.relay.managed_instances]: the relay's function runs on a capacity
    provider (Lambda Managed Instances) instead of one request per execution environment.

    Each execution environment is one relay process on one vCPU (the relay is one asyncio
    process: a second vCPU would idle) with `memory_gib_per_vcpu` GiB, taking up to
    `concurrency_per_environment` streams at once; Lambda runs as many environments on the
    `instance_types` (arm64) as CPU use asks for, up to `max_vcpus` across all instances.
    Without `subnet_ids` the relay stack makes its own VPC (private subnets, VPC endpoints).
    """

    instance_types: tuple[str, ...] = ("m7g.large",)
    concurrency_per_environment: int = LMI_CONCURRENCY_PER_VCPU
    max_vcpus: int = 12
    memory_gib_per_vcpu: int = 2
    #: Existing subnets and security groups for the instances (both or neither).
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()

    @property
    def memory_mb(self) -> int:
        """The function's memory: one vCPU's worth (Lambda gives an environment memory / ratio
        vCPUs)."""
        return self.memory_gib_per_vcpu * 1024

    @property
    def most_streams(self) -> int:
        """The most streams the capacity provider can hold at once: one environment per vCPU."""
        return self.max_vcpus * self.concurrency_per_environment

    @property
    def instance_type(self) -> str | None:
        """The one instance type Lambda runs the relay on (None for several, or a pattern)."""
        if len(self.instance_types) != 1 or self.instance_types[0].endswith(".*"):
            return None
        return self.instance_types[0]

    @property
    def most_instances(self) -> int | None:
        """The most instances `max_vcpus` allows, where there is one instance type whose size
        says its vCPUs (None for several types, a pattern or metal)."""
        vcpus = None if self.instance_type is None else instance_vcpus(self.instance_type)
        return None if vcpus is None else self.max_vcpus // vcpus


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayConfig:
    """The streaming relay's settings for one environment ([environments.NAME.relay])."""

    enabled: bool = True
    auth: str = "AWS_IAM"
    reserved_concurrency: int | None = None
    max_new_tokens_limit: int = MAX_NEW_TOKENS_LIMIT.default
    cors_allow_origins: tuple[str, ...] = ()
    memory_mb: int = 512
    invoker_arns: tuple[str, ...] = ()
    #: Lambda SnapStart: the function starts from a snapshot taken when a version is published,
    #: so a cold start skips the relay's imports and setup. None: on wherever Lambda offers it.
    snap_start: bool | None = None
    #: The function runs on Lambda Managed Instances (None: one request per execution
    #: environment, the default).
    managed_instances: LambdaManagedInstances | None = None
    #: With auth = API_KEY: the limits of every key that sets none of its own (None: no limit).
    key_requests_per_minute: int | None = None
    key_tokens_per_day: int | None = None
    key_tokens_per_month: int | None = None

    @property
    def deployed_managed_instances(self) -> LambdaManagedInstances | None:
        """The managed instances a deployed relay runs on (None: one-request Lambda, or no
        relay)."""
        return self.managed_instances if self.enabled else None

    @property
    def function_memory_mb(self) -> int:
        """The function's memory: one vCPU's worth on managed instances, else memory_mb."""
        if self.managed_instances is not None:
            return self.managed_instances.memory_mb
        return self.memory_mb

    @property
    def api_keys(self) -> bool:
        """Whether callers need one of the environment's API keys (which the function checks)."""
        return self.auth == API_KEY_AUTH

    @property
    def url_auth_type(self) -> str:
        """The function URL's AuthType: the function checks API keys itself, so Lambda lets
        every caller through to it (NONE)."""
        return "NONE" if self.api_keys else self.auth


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayTarget:
    """What the relay calls: one endpoint (and its inference component), serving one model."""

    endpoint_name: str
    model_id: str
    #: The model's engine (contract.ENGINES): the body the relay sends and the stream it reads.
    serving_engine: str = "tgi"
    #: The engine lays out `messages` with the model's own chat template (no prompt_template).
    engine_chat_template: bool = False
    #: The catalog's chat layout for the model (JSON), which the relay renders `messages` with.
    prompt_template: str | None = None
    inference_component_name: str | None = None
    #: The model's tokenizer.json (s3://), where its TGI does not report prompt tokens: the
    #: relay counts them with it.
    tokenizer_uri: str | None = None
    #: The most prompt + answer, and prompt, tokens the container takes
    #: (catalog.Model.context_limits).
    context_limits: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmThresholds:
    """When the alarms go off ([environments.NAME.alarms])."""

    #: Failed invocations (the model's non-2xx answers, broken responses) per 5 minutes.
    endpoint_errors: int = 5
    #: SageMaker's ModelLatency, p90 over 5 minutes (a whole stream: long answers take long).
    model_latency_seconds: float = 180.0
    #: The relay's time to first token, p90 over 5 minutes.
    time_to_first_token_seconds: float = 10.0
    #: Relay errors (after or before the first token, not the caller's own 4xx) per 5 minutes.
    relay_errors: int = 5
    #: GPU memory in use, in percent of each GPU. The engines (TGI, LMI's and AWS's vLLM) reserve
    #: most of it for their KV cache at start, so only nearly all of it is a sign of trouble.
    gpu_memory_percent: float = 99.0
    disk_percent: float = 90.0
    #: A relay invocation this close to the function's timeout is about to be cut off.
    duration_share_of_timeout: float = 0.9
    #: Inference-component hosting: minutes in a row (in five-minute periods) in which SageMaker
    #: refused calls for want of a copy. None: as long as a copy may take to come back from zero
    #: (an instance launch plus the model's download and startup timeouts); longer means it is
    #: not coming (quota, no capacity of the type, a failing start).
    no_capacity_minutes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingSchedule:
    """At `cron` (in `time_zone`), set the scaled capacity's limits to these."""

    name: str
    cron: str
    min_capacity: int
    max_capacity: int | None = None
    time_zone: str = "UTC"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingConfig:
    """What scales between which limits: instances (instance hosting, from min_instances and
    max_instances) or copies of the model (inference-component hosting, min_copies and
    max_copies)."""

    min_capacity: int
    max_capacity: int
    #: Concurrent requests per model copy that scaling aims at. The engines batch requests, so a
    #: few at once is normal; many means callers wait for their first token.
    target_concurrency: float = 4.0
    scale_out_cooldown_seconds: int = 60
    #: Removing a GPU copy is cheap to regret only slowly: a new one takes minutes.
    scale_in_cooldown_seconds: int = 600
    schedules: tuple[ScalingSchedule, ...] = ()

    @property
    def lowest_capacity(self) -> int:
        """The least the capacity may fall to: the minimum, or a schedule's if that is lower."""
        return min([self.min_capacity] + [s.min_capacity for s in self.schedules])

    @property
    def peak_capacity(self) -> int:
        """The most the capacity may reach: the maximum, or a schedule's if that is higher."""
        return max(
            [self.max_capacity]
            + [s.max_capacity for s in self.schedules if s.max_capacity is not None]
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagedInstances:
    """Inference-component hosting: the instances SageMaker may run for the copies. It starts
    them when a copy needs room and stops them when no copy is left on them."""

    min_instances: int = 0
    max_instances: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvironmentConfig:
    """One deployable environment, fully resolved against the model catalog."""

    name: str
    region: str
    account: str | None = None
    model: Model
    instance_type: str
    instance_count: int = 1
    log_retention_days: int = 30
    tags: dict[str, str] = field(default_factory=dict)
    relay: RelayConfig = field(default_factory=RelayConfig)
    #: CloudFormation refuses to delete the stacks until it is turned off again (docs/deploying.md).
    termination_protection: bool = False
    alarms: AlarmThresholds = field(default_factory=AlarmThresholds)
    #: INSTANCE_HOSTING or COMPONENT_HOSTING.
    hosting: str = INSTANCE_HOSTING
    #: Autoscaling of instances (instance hosting; None keeps `instance_count` fixed) or of
    #: copies (inference-component hosting: always set).
    scaling: ScalingConfig | None = None
    #: Where alarms are emailed (an SNS subscription); None: no topic at all.
    alarm_email: str | None = None
    #: What the relay runs on in the region (None when the relay is off): resolved, and so
    #: checked, once by the config.
    relay_platform: RelayPlatform | None = None
    #: The environment accepts the licence of its gated model (the catalog's `gated`): without
    #: it such a model is refused; for a model without one it grants nothing.
    accept_eula: bool = False

    @property
    def relay_target(self) -> RelayTarget:
        """What the environment's relay calls."""
        return RelayTarget(
            endpoint_name=self.endpoint_name,
            model_id=self.model.id,
            serving_engine=self.model.engine,
            engine_chat_template=self.model.engine_chat_template,
            prompt_template=self.model.prompt_template,
            inference_component_name=self.inference_component_name,
            tokenizer_uri=self.model.tokenizer_uri(self.region),
            context_limits=self.model.context_limits(self.instance_type),
        )

    @property
    def endpoint_name(self) -> str:
        """Deterministic, so callers and the relay know it; unique per environment, hosting mode
        and instance type.

        Named by the instance type so that changing it makes CloudFormation create a new
        endpoint before it deletes the old one, instead of updating the endpoint in place:
        SageMaker refuses an UpdateEndpoint that changes the instance type of a variant
        registered with Application Auto Scaling (and CloudFormation updates the endpoint
        before it touches the old scalable target), and it cannot move an inference component
        onto instances that may lack its GPUs. Named by hosting mode so a switch is a new
        endpoint too, never one kind of endpoint turned into the other.
        """
        instances = self.instance_type.removeprefix("ml.").replace(".", "-")
        mode = "-ic" if self.hosting == COMPONENT_HOSTING else ""
        return f"jumpstream-{self.name}{mode}-{instances}"

    @property
    def inference_component_name(self) -> str | None:
        """The component the relay invokes (inference-component hosting), fixed like the
        endpoint's name so the relay stack knows it without a cross-stack reference."""
        if self.hosting != COMPONENT_HOSTING:
            return None
        return f"{self.endpoint_name}-model"

    @property
    def gpus(self) -> int:
        """The GPUs of one instance of the environment's type, as the catalog has them."""
        return self.model.instance_types[self.instance_type].gpus

    @property
    def managed_instances(self) -> ManagedInstances | None:
        """Inference-component hosting: the instances SageMaker may run for the copies. A copy
        is an instance (every catalog model takes all of its instance's GPUs): one per copy at
        the peak, and one for the copy an update starts beside the old one."""
        if self.hosting != COMPONENT_HOSTING or self.scaling is None:
            return None
        return ManagedInstances(min_instances=0, max_instances=self.scaling.peak_capacity + 1)

    @property
    def fleet(self) -> Fleet:
        """The instances an update of an instance-hosted endpoint may find running: what decides
        which update policy SageMaker can accept (a rolling batch is a share of them)."""
        if self.scaling is None:
            return Fleet(smallest=self.instance_count, largest=self.instance_count)
        return Fleet(
            smallest=self.scaling.lowest_capacity,
            largest=self.scaling.peak_capacity,
            autoscaled=True,
        )

    @property
    def cold_start_seconds(self) -> int:
        """How long the model may take to start on a new instance (see cold_start_limit_seconds)."""
        return cold_start_limit_seconds(self.model)

    @property
    def idle_instances(self) -> int:
        """Instances billed when nobody calls: the fewest autoscaling keeps (0 copies of a
        component means no instance), or the fixed count."""
        if self.scaling is None:
            return self.instance_count
        return self.scaling.min_capacity

    @property
    def peak_instances(self) -> int:
        """Instances billed at the most autoscaling allows, or the fixed count."""
        if self.scaling is None:
            return self.instance_count
        return self.scaling.peak_capacity

    def summary(self) -> str:
        """One line on what the environment deploys, what it bills idle and who may call its
        relay, so neither a default that puts a model on four GPUs nor an open URL is a
        surprise."""
        gpus = f"{self.gpus} GPU{'s' if self.gpus > 1 else ''}"
        counts = (
            str(self.instance_count)
            if self.scaling is None
            else f"{self.idle_instances} to {self.peak_instances}"
        )
        if self.hosting == COMPONENT_HOSTING and self.scaling is not None:
            capacity = f"{counts} copies, one {self.instance_type} ({gpus}) each"
        else:
            capacity = f"{counts} x {self.instance_type} ({gpus} each)"
        idle = self.idle_instances * HOURS_PER_MONTH
        relay = f"relay auth {self.relay.auth}" if self.relay.enabled else "no relay"
        licence = f"; accepts the {self.model.gated.licence}" if self.model.gated else ""
        return (
            f"{self.name}: {self.model.id} on {capacity} in {self.region}, {self.hosting} "
            f"hosting; idle, {idle:,} instance-hours a month; {relay}{licence}"
        )

    @property
    def stack_prefix(self) -> str:
        return environment_prefix(self.name)

    @property
    def endpoint_stack_name(self) -> str:
        return f"{self.stack_prefix}-endpoint"

    @property
    def relay_stack_name(self) -> str:
        """Where the relay's function URL is an output (RELAY_URL_OUTPUT) once deployed."""
        return f"{self.stack_prefix}-relay"


def environment_prefix(environment: str) -> str:
    """`jumpstream-<env>`: what an environment's stacks, dashboard and relay alarms are named by
    (the alarm topic admits alarms by this prefix)."""
    return f"jumpstream-{environment}"
