"""The one workload-spec model (services.common._workload): what a spec may say, as the API checks
it before create_lease and the GPU node checks it before running it."""

from __future__ import annotations

import base64
import re
import struct
from typing import Annotated, Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pydantic import BaseModel, ValidationError

from services.common import (
    MAX_SPEC_BYTES,
    FullMatch,
    MachineResources,
    WorkloadSpec,
    canonical_json,
    check_image,
    decimal_range_pattern,
    lease_share,
)


def _openssh(key: Any) -> str:
    line: bytes = key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return line.decode()


ED25519 = _openssh(ed25519.Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key())
ECDSA = _openssh(ec.derive_private_key(7, ec.SECP384R1()).public_key())
RSA = _openssh(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _mpint(value: int) -> bytes:
    return _ssh_string(value.to_bytes(value.bit_length() // 8 + 1, "big"))


# An RSA key line of 512 bits: well-formed, and refused by sshd.
SMALL_RSA = (
    "ssh-rsa "
    + base64.b64encode(_ssh_string(b"ssh-rsa") + _mpint(65537) + _mpint((1 << 511) | 1)).decode()
)


def spec(**fields: Any) -> dict[str, Any]:
    return {"version": 1, "image": "docker.io/library/ubuntu:22.04", "ssh_public_key": ED25519,
            **fields}  # fmt: skip


def refusal(document: dict[str, Any]) -> str:
    """The message of the first error WorkloadSpec gives for document."""
    with pytest.raises(ValidationError) as err:
        WorkloadSpec.model_validate(document)
    first = err.value.errors()[0]
    return f"{'.'.join(map(str, first['loc']))}: {first['msg']}"


@pytest.mark.parametrize(
    "image",
    [
        "ubuntu",
        "docker.io/library/ubuntu:22.04",
        "localhost/gridlease-sshd:1",
        "localhost:5000/team/app:Release_1.2-rc3",
        "ghcr.io/org/my__app.v2",
        "registry.example.com:443/a/b/c@sha256:" + "ab" * 32,
        "[::1]:5000/x:latest",
    ],
)
def test_image_references_docker_accepts_pass(image: str) -> None:
    assert WorkloadSpec.model_validate(spec(image=image)).image == image


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("Docker.io/Library/Ubuntu:22.04", "must be lowercase"),
        ("UBUNTU", "must be lowercase"),
        ("ubuntu\n", "whitespace or control"),
        ("ubuntu:22.04\n", "whitespace or control"),
        ("ubu ntu", "whitespace or control"),
        ("ubuntu:", "not a valid image reference"),
        ("a//b", "not a valid image reference"),
        ("-ubuntu", "not a valid image reference"),
        ("ubuntu@sha256:abc", "not a valid image reference"),
        ("a" * 256, "at most 255 characters"),
    ],
)
def test_image_references_the_node_would_refuse_are_refused_with_the_reason(
    image: str, reason: str
) -> None:
    assert reason in refusal(spec(image=image))
    with pytest.raises(ValueError, match=reason):
        check_image(image)


@pytest.mark.parametrize("key", [ED25519, ECDSA, RSA, ED25519 + " me@laptop", ECDSA + " "])
def test_real_ssh_keys_pass(key: str) -> None:
    assert WorkloadSpec.model_validate(spec(ssh_public_key=key)).ssh_public_key == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("not a key", "one OpenSSH public key line"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGridleaseTestKeyNotForUseAAAAAAAAAAAAAAAAAAA x",
         "does not parse"),
        ("ssh-ed25519 " + base64.b64encode(b"x" * 51).decode(), "does not parse"),
        (ED25519 + "\n", "one OpenSSH public key line"),
        (ED25519 + "\n" + ECDSA, "one OpenSSH public key line"),
        ('command="sh" ' + ED25519, "one OpenSSH public key line"),
        ("ssh-dss " + ED25519.split()[1], "is not accepted"),
        (SMALL_RSA, "at least 1024 bits"),
    ],
)  # fmt: skip
def test_ssh_keys_that_are_not_one_real_key_line_are_refused(key: str, reason: str) -> None:
    assert reason in refusal(spec(ssh_public_key=key))


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"GRIDLEASE_LEASE_ID": "7"}, "reserved for the node"),
        ({"gridlease_ssh_authorized_key": "x"}, "reserved for the node"),
        ({"NVIDIA_VISIBLE_DEVICES": "all"}, "reserved for the node"),
        ({"MODE\n": "x"}, "not a variable name"),
        ({"1BAD": "x"}, "not a variable name"),
        ({"BAD-NAME": "x"}, "not a variable name"),
        ({"OK": "a\x00b"}, "NUL"),
    ],
)
def test_env_may_not_set_node_variables_or_bad_names(env: dict[str, str], reason: str) -> None:
    assert reason in refusal(spec(env=env))


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"ports": [2222]}, "reserved for the node's sshd"),
        ({"ports": [80, 80]}, "must not repeat"),
        ({"ports": [0]}, "ports.0"),
        ({"ports": [65536]}, "ports.0"),
        ({"ports": [True]}, "ports.0"),
        ({"memory_mib": "512"}, "memory_mib"),
        ({"memory_mib": 1.5}, "memory_mib"),
        ({"memory_mib": 63}, "memory_mib"),
        ({"cpu_millicores": 99}, "cpu_millicores"),
        ({"cpu_millicores": 1_024_001}, "cpu_millicores"),
        ({"command": ["sleep", "a\x00"]}, "NUL"),
        ({"privileged": True}, "privileged"),
        ({"version": 2}, "version"),
    ],
)
def test_spec_fields_out_of_bounds_are_refused(fields: dict[str, Any], where: str) -> None:
    assert where in refusal(spec(**fields))


def test_spec_over_the_node_size_limit_is_refused() -> None:
    big = spec(command=["x" * 4000] * 17)
    assert len(canonical_json(big)) > MAX_SPEC_BYTES
    assert f"over {MAX_SPEC_BYTES}" in refusal(big)


def test_document_keeps_left_out_resources_out_and_round_trips() -> None:
    parsed = WorkloadSpec.model_validate(spec(ports=[8080, 22], memory_mib=2048.0))
    document = parsed.workload_document()
    assert "cpu_millicores" not in document and document["memory_mib"] == 2048
    assert document["ports"] == [22, 8080]
    assert WorkloadSpec.model_validate(document).workload_document() == document
    assert (parsed.cpu, parsed.memory) == (1000, 2048)


def test_lease_share_is_the_gpus_part_of_the_host_rounded_down() -> None:
    host = MachineResources(cpu_millicores=2000, memory_mib=23 * 1024)
    assert lease_share(host, 1, 8) == MachineResources(250, 2944)
    assert lease_share(host, 8, 8) == host
    assert lease_share(MachineResources(1000, 1000), 1, 3) == MachineResources(333, 333)
    for gpus, count in ((0, 8), (9, 8), (1, 0)):
        with pytest.raises(ValueError, match="gpus"):
            lease_share(host, gpus, count)


def test_a_1_gpu_lease_asking_1_tib_and_2_cpus_is_beyond_its_share() -> None:
    """The outside run's case: 1 of 8 GPUs on a 23 GiB, 2-CPU host."""
    share = lease_share(MachineResources(2000, 23 * 1024), 1, 8)
    asked = WorkloadSpec.model_validate(spec(memory_mib=1024 * 1024, cpu_millicores=2000))
    beyond = asked.beyond_share(share)
    assert set(beyond) == {"cpu_millicores", "memory_mib"}
    assert "(2944)" in beyond["memory_mib"] and "(250)" in beyond["cpu_millicores"]
    within = WorkloadSpec.model_validate(spec(memory_mib=2944, cpu_millicores=250))
    assert within.beyond_share(share) == {}
    assert WorkloadSpec.model_validate(spec()).beyond_share(share) == {}  # the node sizes it


def test_full_match_refuses_a_final_newline_that_dollar_would_let_through() -> None:
    class Model(BaseModel):
        name: Annotated[str, FullMatch(r"[a-z]+", message="lowercase letters")]

    assert Model(name="abc").name == "abc"
    assert re.match(r"^[a-z]+$", "abc\n")  # the fault: `$` matches before a final newline
    for bad in ("abc\n", "abc\nx", "ABC"):
        with pytest.raises(ValidationError, match="lowercase letters"):
            Model(name=bad)
    assert Model.model_json_schema()["properties"]["name"]["pattern"] == "^(?:[a-z]+)$"


@pytest.mark.parametrize(("low", "high"), [(0, 0), (0, 9), (1, 10), (37, 981), (5, 5000)])
def test_decimal_range_pattern_matches_exactly_the_range(low: int, high: int) -> None:
    pattern = re.compile(decimal_range_pattern(low, high))
    for n in range(0, high + 30):
        assert (pattern.fullmatch(str(n)) is not None) == (low <= n <= high), n
    assert not pattern.fullmatch("0" + str(high))  # one spelling: no leading zeros


def test_decimal_range_pattern_at_u128_bounds() -> None:
    pattern = re.compile(decimal_range_pattern(0, 2**128 - 1))
    for n in (0, 1, 10**38, 2**128 - 1, 2**127, 2**128 - 10**20):
        assert pattern.fullmatch(str(n))
    for text in (str(2**128), str(10**39), "-1", "01", "1.0", ""):
        assert not pattern.fullmatch(text), text
