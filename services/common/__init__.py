"""Code every Gridlease service shares: encodings, keys, settings, logging, metrics, errors and
the generated gRPC stubs (services.common.grpc_gen). Never imports a service.

Import from here, not from the private modules:

    from services.common import spec_hash, load_or_create_keypair, GridleaseSettings
"""

from services.common._canonical import (
    DOMAIN_OFFER,
    DOMAIN_SUBMIT_WORKLOAD,
    blake2b_256,
    canonical_json,
    hex0x,
    signing_payload,
    spec_hash,
    unhex0x,
    workload_submission_payload,
)
from services.common._errors import (
    BadSignature,
    ConfigError,
    DuplicateSequence,
    EncodingError,
    GridleaseError,
    MalformedMessage,
    MessageTooLarge,
    NotFound,
    RejectedError,
    StaleSequence,
    TimestampOutOfRange,
    Unavailable,
    UnknownFields,
)
from services.common._grpc import (
    REASON_KEY,
    abort_with,
    add_health,
    error_from_rpc,
    reason_of,
    server_options,
    set_serving,
)
from services.common._keys import (
    SS58_FORMAT,
    keypair_from_secret,
    load_or_create_keypair,
    machine_id_for,
    new_keypair,
    public_key_from_ss58,
    sign,
    ss58_from_public_key,
    verify,
)
from services.common._logging import JsonFormatter, configure_logging, get_logger
from services.common._metrics import (
    LATENCY_BUCKETS,
    MetricsServer,
    new_registry,
    rpc_latency,
    start_metrics_server,
)
from services.common._offers import (
    build_offer,
    has_unknown_fields,
    now_ms,
    open_signed_offer,
    sign_offer,
)
from services.common._settings import CONFIG_FILE_ENV, GridleaseSettings

__all__ = [
    "CONFIG_FILE_ENV",
    "DOMAIN_OFFER",
    "DOMAIN_SUBMIT_WORKLOAD",
    "LATENCY_BUCKETS",
    "REASON_KEY",
    "SS58_FORMAT",
    "BadSignature",
    "ConfigError",
    "DuplicateSequence",
    "EncodingError",
    "GridleaseError",
    "GridleaseSettings",
    "JsonFormatter",
    "MalformedMessage",
    "MessageTooLarge",
    "MetricsServer",
    "NotFound",
    "RejectedError",
    "StaleSequence",
    "TimestampOutOfRange",
    "Unavailable",
    "UnknownFields",
    "abort_with",
    "add_health",
    "blake2b_256",
    "build_offer",
    "canonical_json",
    "configure_logging",
    "error_from_rpc",
    "get_logger",
    "has_unknown_fields",
    "hex0x",
    "keypair_from_secret",
    "load_or_create_keypair",
    "machine_id_for",
    "new_keypair",
    "new_registry",
    "now_ms",
    "open_signed_offer",
    "public_key_from_ss58",
    "reason_of",
    "rpc_latency",
    "server_options",
    "set_serving",
    "sign",
    "sign_offer",
    "signing_payload",
    "spec_hash",
    "ss58_from_public_key",
    "start_metrics_server",
    "unhex0x",
    "verify",
    "workload_submission_payload",
]
