"""The workload spec: the one model of what a customer asks a GPU node to run.

The customer API validates a lease request with it before `create_lease` (so the chain never
holds escrow for a spec the node would refuse), and the GPU node parses what it is handed with
it. The spec travels as canonical JSON (services.common.canonical_json); its hash is what the
chain records. Version 1:

    {"version": 1, "image": "docker.io/library/ubuntu:22.04",
     "ssh_public_key": "ssh-ed25519 AAAA... me@laptop",
     "command": ["sleep", "infinity"], "env": {"MODEL": "llama"}, "ports": [8080],
     "cpu_millicores": 2000, "memory_mib": 8192}

Only `version`, `image` and `ssh_public_key` are required; `cpu_millicores` and `memory_mib`
left out mean the node's defaults. Every text pattern is matched whole (re.fullmatch): `$` would
also match before a final newline, and `"ubuntu\\n"` would pass here and fail on the node.

What the rules are, and why (each is something the node or its runtime would refuse later):
- image: a container image reference as Docker/Podman parse it, with a lowercase name
  (registry and repository); `Docker.io/Library/Ubuntu:22.04` is refused and told why.
- ssh_public_key: one OpenSSH public key line (`type base64 [comment]`) that parses as a key
  of a type sshd accepts (RSA of at least 1024 bits); no authorized_keys options, one line.
- env: names are shell variable names; GRIDLEASE_* and NVIDIA_* are the node's own
  (lease id, SSH key, which GPUs the container sees) and may not be set by a spec.
- command and env values: no NUL (an exec argument or variable cannot hold one).
- ports: 1..65535, no repeats, not the node's own sshd port (2222).
- cpu_millicores / memory_mib: within the static bounds below; against the machine, see
  `lease_share` and `WorkloadFields.beyond_share`.
- the whole canonical document: at most MAX_SPEC_BYTES (what the node reads).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictInt,
    StrictStr,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from services.common._canonical import canonical_json
from services.common._errors import EncodingError

__all__ = [
    "DEFAULT_CPU_MILLICORES",
    "DEFAULT_MEMORY_MIB",
    "ENV_NAME_PATTERN",
    "MAX_SPEC_BYTES",
    "MIN_CPU_MILLICORES",
    "MIN_MEMORY_MIB",
    "RESERVED_CONTAINER_PORTS",
    "RESERVED_ENV_PREFIXES",
    "JSON_INTEGER",
    "FullMatch",
    "MachineResources",
    "SchemaPattern",
    "WorkloadFields",
    "WorkloadSpec",
    "check_env_name",
    "check_image",
    "check_ssh_public_key",
    "decimal_range_pattern",
    "lease_share",
]

SPEC_VERSION = 1
MAX_SPEC_BYTES = 64 * 1024
# Ports the node itself uses inside every lease (sshd); a lease cannot publish them again.
RESERVED_CONTAINER_PORTS = frozenset({2222})
# Variables the node sets or the NVIDIA container runtime reads (NVIDIA_VISIBLE_DEVICES=all
# would hand the container every GPU of the host). Compared case-insensitively.
RESERVED_ENV_PREFIXES = ("GRIDLEASE_", "NVIDIA_")
# What a workload gets when its spec leaves the field out.
DEFAULT_CPU_MILLICORES = 1000
DEFAULT_MEMORY_MIB = 1024
MIN_CPU_MILLICORES = 100
MAX_CPU_MILLICORES = 1_024_000  # 1,024 CPUs
MIN_MEMORY_MIB = 64
MAX_MEMORY_MIB = 16 * 1024 * 1024  # 16 TiB

# -- image references (the grammar of github.com/distribution/reference, ASCII only) -----------
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
# Lowercase only: DNS names are case-insensitive and Docker treats a first component with an
# uppercase letter as a registry host, so "Library/ubuntu" would silently mean host "Library".
_DOMAIN_COMPONENT = r"(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-f:]+\])(?::[0-9]{{1,5}})?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
IMAGE_PATTERN = rf"{_NAME}(?::{_TAG})?(?:@{_DIGEST})?"
_IMAGE = re.compile(IMAGE_PATTERN)
# Docker refuses names (registry and repository) over 255 characters; bounding the whole
# reference instead keeps the rule one the schema can state (maxLength).
MAX_IMAGE_LEN = 255

# -- env names, SSH key lines -----------------------------------------------------------------
ENV_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]{0,127}"
_ENV_NAME = re.compile(ENV_NAME_PATTERN)
_SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
# type, one space, base64 blob, optionally one space and a comment without control characters.
_SSH_KEY_LINE = re.compile(
    r"(?P<type>[a-z0-9@.-]{1,64}) (?P<blob>[A-Za-z0-9+/]{16,}={0,2})(?: [^\x00-\x1f\x7f]*)?"
)
SSH_KEY_FORMAT = "openssh-public-key"
MIN_RSA_BITS = 1024  # sshd refuses smaller RSA keys (RequiredRSASize)
MAX_SSH_KEY_LEN = 16 * 1024


def check_image(value: str) -> str:
    """value if it is an image reference the node's runtimes pull; ValueError naming why not."""
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("image must not contain whitespace or control characters")
    if len(value) > MAX_IMAGE_LEN:
        raise ValueError(f"image must be at most {MAX_IMAGE_LEN} characters")
    if _IMAGE.fullmatch(value) is None:
        name = value.split("@", 1)[0]
        if ":" in name.rsplit("/", 1)[-1]:
            name = name.rsplit(":", 1)[0]
        if name != name.lower() and _IMAGE.fullmatch(value.replace(name, name.lower(), 1)):
            raise ValueError(
                f"image name must be lowercase (registry and repository): {name!r} "
                f"should be {name.lower()!r}"
            )
        raise ValueError("image is not a valid image reference ([registry/]repo[:tag][@digest])")
    return value


def check_env_name(name: str) -> str:
    """name if a spec may set it: a variable name, not one of the node's own."""
    if _ENV_NAME.fullmatch(name) is None:
        raise ValueError(f"env name {name!r} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)")
    if name.upper().startswith(RESERVED_ENV_PREFIXES):
        raise ValueError(
            f"env name {name!r} is reserved for the node "
            f"({', '.join(p + '*' for p in RESERVED_ENV_PREFIXES)})"
        )
    return name


def check_ssh_public_key(value: str) -> str:
    """value if it is one OpenSSH public key line of a type sshd accepts; ValueError otherwise."""
    match = _SSH_KEY_LINE.fullmatch(value)
    if match is None:
        raise ValueError(
            "ssh_public_key must be one OpenSSH public key line: 'type base64 [comment]'"
        )
    if match["type"] not in _SSH_KEY_TYPES:
        raise ValueError(f"ssh_public_key type {match['type']!r} is not accepted")
    try:
        key = load_ssh_public_key(f"{match['type']} {match['blob']}".encode("ascii"))
    except (ValueError, TypeError) as exc:  # UnsupportedAlgorithm is a ValueError subclass
        raise ValueError(f"ssh_public_key does not parse as a {match['type']} key") from exc
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise ValueError(f"ssh_public_key: RSA keys need at least {MIN_RSA_BITS} bits")
    return value


def _check_ports(ports: tuple[int, ...]) -> tuple[int, ...]:
    if len(set(ports)) != len(ports):
        raise ValueError("ports must not repeat")
    reserved = sorted(RESERVED_CONTAINER_PORTS.intersection(ports))
    if reserved:
        raise ValueError(f"port {reserved[0]} is reserved for the node's sshd")
    return ports


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _digits_range(low: str, high: str) -> list[str]:
    """Alternatives matching every digit string from low to high (equal lengths, low <= high)."""
    if low == high:
        return [low]
    if len(low) == 1:
        return [f"[{low}-{high}]"]
    if low[0] == high[0]:
        return [low[0] + rest for rest in _digits_range(low[1:], high[1:])]
    width = len(low) - 1
    first, last = int(low[0]), int(high[0])
    out: list[str] = []
    if low[1:] != "0" * width:  # low's first digit only with its own tail and above
        out += [low[0] + rest for rest in _digits_range(low[1:], "9" * width)]
        first += 1
    tail_high = high[1:] != "9" * width
    if tail_high:
        last -= 1
    if first <= last:
        digit = str(first) if first == last else f"[{first}-{last}]"
        out.append(f"{digit}[0-9]{{{width}}}")
    if tail_high:
        out += [high[0] + rest for rest in _digits_range("0" * width, high[1:])]
    return out


def decimal_range_pattern(low: int, high: int) -> str:
    """A regular expression (to match whole) for the decimal integers low..high, written
    without leading zeros: how a schema states the bounds of an amount sent as a string."""
    if not 0 <= low <= high:
        raise ValueError("need 0 <= low <= high")
    alternatives: list[str] = []
    for width in range(len(str(low)), len(str(high)) + 1):
        start = max(low, 10 ** (width - 1) if width > 1 else 0)
        end = min(high, 10**width - 1)
        alternatives += _digits_range(str(start), str(end))
    return "|".join(alternatives)


@dataclass(frozen=True)
class SchemaPattern:
    """Annotated metadata: shows `pattern` in the JSON schema as a whole-string match (the
    validation itself is elsewhere). ECMA-262, the schema's dialect, has no `\\Z`; its `$`
    without the m flag is the end of the input. Write patterns both dialects read alike (no
    named groups, no `\\Z`)."""

    pattern: str
    description: str = ""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = f"^(?:{self.pattern})$"
        if self.description:
            json_schema.setdefault("description", self.description)
        return json_schema


@dataclass(frozen=True)
class FullMatch(SchemaPattern):
    """`Annotated[str, FullMatch(pattern)]`: the whole string must match (re.fullmatch; a `$`
    would let "abc\\n" pass), and the schema documents the pattern."""

    # What a refusal says; default: the pattern itself.
    message: str = ""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        compiled = re.compile(self.pattern)

        message = self.message or f"must match {self.pattern} as a whole"

        def check(value: str) -> str:
            if compiled.fullmatch(value) is None:
                raise ValueError(message)
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))


def _env_schema(schema: dict[str, Any]) -> None:
    """Names in `propertyNames` (pydantic writes `patternProperties`, which leaves other names
    unconstrained), the node's own prefixes excluded in any case."""
    values = next(iter(schema.pop("patternProperties", {}).values()), None) or schema.pop(
        "additionalProperties", {}
    )
    reserved = "|".join(
        "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in prefix)
        for prefix in RESERVED_ENV_PREFIXES
    )
    schema["propertyNames"] = {
        "minLength": 1,
        "maxLength": 128,
        "pattern": f"^(?!{reserved})(?:{ENV_NAME_PATTERN})$",
    }
    schema["additionalProperties"] = values


ImageRef = Annotated[
    StrictStr,
    StringConstraints(min_length=1, max_length=MAX_IMAGE_LEN),
    AfterValidator(check_image),
    SchemaPattern(
        IMAGE_PATTERN, "Container image reference, lowercase name: [registry/]repo[:tag][@digest]."
    ),
]
# The schema names the format only: no pattern can say "parses as a key", and a pattern beside
# the format would have schema readers (and fuzzers) take any matching string for a key.
SshPublicKey = Annotated[
    StrictStr,
    StringConstraints(min_length=1, max_length=MAX_SSH_KEY_LEN),
    AfterValidator(check_ssh_public_key),
    WithJsonSchema(
        {
            "type": "string",
            "format": SSH_KEY_FORMAT,
            "description": "One OpenSSH public key line for root, as in id_ed25519.pub: "
            "'ssh-ed25519 AAAA... me@laptop' (types: " + ", ".join(_SSH_KEY_TYPES) + "; RSA "
            f"of at least {MIN_RSA_BITS} bits; at most {MAX_SSH_KEY_LEN} characters, one line).",
        }
    ),
]
EnvName = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=128), AfterValidator(check_env_name)
]


def _json_integer(value: Any) -> Any:
    # JSON Schema counts 5.0 as an integer; "5" and true are not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Annotated metadata for a StrictInt, after its bounds (so the schema keeps them): a JSON
# integer, 5 or 5.0, never "5", true or 5.5.
JSON_INTEGER = BeforeValidator(_json_integer)
Text = Annotated[
    StrictStr,
    StringConstraints(max_length=4096),
    AfterValidator(_no_nul),
    SchemaPattern(r"[^\x00]*", "Any text but NUL."),
]
Port = Annotated[
    StrictInt,
    Field(ge=1, le=65535, json_schema_extra={"not": {"enum": sorted(RESERVED_CONTAINER_PORTS)}}),
    JSON_INTEGER,
]
CpuMillicores = Annotated[
    StrictInt, Field(ge=MIN_CPU_MILLICORES, le=MAX_CPU_MILLICORES), JSON_INTEGER
]
MemoryMib = Annotated[StrictInt, Field(ge=MIN_MEMORY_MIB, le=MAX_MEMORY_MIB), JSON_INTEGER]


@dataclass(frozen=True)
class MachineResources:
    """CPU (millicores) and memory (MiB) of a machine, or of a lease's share of one."""

    cpu_millicores: int
    memory_mib: int


def lease_share(machine: MachineResources, gpus: int, gpu_count: int) -> MachineResources:
    """What a lease of `gpus` of the machine's `gpu_count` GPUs may use: the machine's CPU and
    memory in proportion, rounded down (so the shares of all leases never exceed the machine).
    ValueError when gpus is not within 1..gpu_count."""
    if gpu_count < 1 or not 1 <= gpus <= gpu_count:
        raise ValueError(f"gpus must be within 1..{max(gpu_count, 0)}, got {gpus}")
    return MachineResources(
        cpu_millicores=machine.cpu_millicores * gpus // gpu_count,
        memory_mib=machine.memory_mib * gpus // gpu_count,
    )


class WorkloadFields(BaseModel):
    """The workload part of a spec, shared by WorkloadSpec (the node's document) and the API's
    lease request. Scalars are strict: "1000" is not 1000 and true is not 1, so a spec means one
    thing only (1000.0 is 1000 here, as in JSON Schema; its hash has no canonical form, so a
    document carrying it is still refused by the node, see services.gpu_node.spec)."""

    image: ImageRef
    ssh_public_key: SshPublicKey
    command: tuple[Text, ...] = Field(default=(), max_length=256)
    env: dict[EnvName, Text] = Field(
        default_factory=dict, max_length=256, json_schema_extra=_env_schema
    )
    ports: Annotated[tuple[Port, ...], AfterValidator(_check_ports)] = Field(
        default=(), max_length=32, json_schema_extra={"uniqueItems": True}
    )
    cpu_millicores: CpuMillicores | None = Field(
        default=None, description=f"CPU limit; left out: {DEFAULT_CPU_MILLICORES}."
    )
    memory_mib: MemoryMib | None = Field(
        default=None, description=f"Memory limit in MiB; left out: {DEFAULT_MEMORY_MIB}."
    )

    def workload_document(self) -> dict[str, Any]:
        """The spec document (JSON values only) whose canonical hash goes on chain; fields left
        out stay out, so the node applies the same defaults."""
        document: dict[str, Any] = {
            "version": SPEC_VERSION,
            "image": self.image,
            "command": list(self.command),
            "ports": sorted(self.ports),
            "env": dict(self.env),
            "ssh_public_key": self.ssh_public_key,
        }
        if self.cpu_millicores is not None:
            document["cpu_millicores"] = self.cpu_millicores
        if self.memory_mib is not None:
            document["memory_mib"] = self.memory_mib
        return document

    @model_validator(mode="after")
    def _encodable_and_small(self) -> WorkloadFields:
        # The node reads at most MAX_SPEC_BYTES of canonical JSON; lone surrogates have no UTF-8.
        try:
            size = len(canonical_json(self.workload_document()))
        except EncodingError as exc:
            raise ValueError(f"spec is not encodable: {exc}") from exc
        if size > MAX_SPEC_BYTES:
            raise ValueError(f"spec is {size} bytes of JSON, over {MAX_SPEC_BYTES}")
        return self

    def beyond_share(self, share: MachineResources) -> dict[str, str]:
        """Field -> why, for each of cpu_millicores and memory_mib that asks more than `share`
        (see lease_share); empty when the spec fits. Fields left out are the node's to size."""
        beyond: dict[str, str] = {}
        if self.cpu_millicores is not None and self.cpu_millicores > share.cpu_millicores:
            beyond["cpu_millicores"] = (
                f"cpu_millicores {self.cpu_millicores} exceeds the lease's share of the "
                f"machine ({share.cpu_millicores})"
            )
        if self.memory_mib is not None and self.memory_mib > share.memory_mib:
            beyond["memory_mib"] = (
                f"memory_mib {self.memory_mib} exceeds the lease's share of the machine "
                f"({share.memory_mib})"
            )
        return beyond


class WorkloadSpec(WorkloadFields):
    """A whole spec document as the node receives it. Unknown keys are refused, so a field the
    node does not understand is never silently ignored. GPUs are not in the spec: the chain
    decides which GPU indexes the lease holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]

    @property
    def cpu(self) -> int:
        """CPU millicores the workload gets (the default when the spec leaves it out)."""
        return DEFAULT_CPU_MILLICORES if self.cpu_millicores is None else self.cpu_millicores

    @property
    def memory(self) -> int:
        """Memory in MiB the workload gets (the default when the spec leaves it out)."""
        return DEFAULT_MEMORY_MIB if self.memory_mib is None else self.memory_mib
