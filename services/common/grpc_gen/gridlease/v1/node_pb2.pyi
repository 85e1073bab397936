from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkloadStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORKLOAD_STATUS_UNSPECIFIED: _ClassVar[WorkloadStatus]
    WORKLOAD_STATUS_PENDING: _ClassVar[WorkloadStatus]
    WORKLOAD_STATUS_RUNNING: _ClassVar[WorkloadStatus]
    WORKLOAD_STATUS_FAILED: _ClassVar[WorkloadStatus]
    WORKLOAD_STATUS_TERMINATED: _ClassVar[WorkloadStatus]
    WORKLOAD_STATUS_UNKNOWN: _ClassVar[WorkloadStatus]
WORKLOAD_STATUS_UNSPECIFIED: WorkloadStatus
WORKLOAD_STATUS_PENDING: WorkloadStatus
WORKLOAD_STATUS_RUNNING: WorkloadStatus
WORKLOAD_STATUS_FAILED: WorkloadStatus
WORKLOAD_STATUS_TERMINATED: WorkloadStatus
WORKLOAD_STATUS_UNKNOWN: WorkloadStatus

class SubmitWorkloadRequest(_message.Message):
    __slots__ = ("lease_id", "spec", "customer", "signature")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    lease_id: int
    spec: bytes
    customer: str
    signature: bytes
    def __init__(self, lease_id: _Optional[int] = ..., spec: _Optional[bytes] = ..., customer: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class SubmitWorkloadResponse(_message.Message):
    __slots__ = ("accepted", "status", "message")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    status: WorkloadStatus
    message: str
    def __init__(self, accepted: _Optional[bool] = ..., status: _Optional[_Union[WorkloadStatus, str]] = ..., message: _Optional[str] = ...) -> None: ...

class GetLeaseStatusRequest(_message.Message):
    __slots__ = ("lease_id",)
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    lease_id: int
    def __init__(self, lease_id: _Optional[int] = ...) -> None: ...

class GetLeaseStatusResponse(_message.Message):
    __slots__ = ("lease_id", "status", "message", "host", "ssh_port", "ports", "chain_state")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    SSH_PORT_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    CHAIN_STATE_FIELD_NUMBER: _ClassVar[int]
    lease_id: int
    status: WorkloadStatus
    message: str
    host: str
    ssh_port: int
    ports: _containers.RepeatedCompositeFieldContainer[ExposedPort]
    chain_state: str
    def __init__(self, lease_id: _Optional[int] = ..., status: _Optional[_Union[WorkloadStatus, str]] = ..., message: _Optional[str] = ..., host: _Optional[str] = ..., ssh_port: _Optional[int] = ..., ports: _Optional[_Iterable[_Union[ExposedPort, _Mapping]]] = ..., chain_state: _Optional[str] = ...) -> None: ...

class ExposedPort(_message.Message):
    __slots__ = ("container_port", "host_port")
    CONTAINER_PORT_FIELD_NUMBER: _ClassVar[int]
    HOST_PORT_FIELD_NUMBER: _ClassVar[int]
    container_port: int
    host_port: int
    def __init__(self, container_port: _Optional[int] = ..., host_port: _Optional[int] = ...) -> None: ...

class GetLeaseGpusRequest(_message.Message):
    __slots__ = ("lease_id", "customer", "timestamp_ms", "nonce", "signature")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    lease_id: int
    customer: str
    timestamp_ms: int
    nonce: bytes
    signature: bytes
    def __init__(self, lease_id: _Optional[int] = ..., customer: _Optional[str] = ..., timestamp_ms: _Optional[int] = ..., nonce: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class GpuSample(_message.Message):
    __slots__ = ("timestamp_ms", "utilization_pct", "memory_used_bytes", "temperature_c", "power_w")
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    UTILIZATION_PCT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_C_FIELD_NUMBER: _ClassVar[int]
    POWER_W_FIELD_NUMBER: _ClassVar[int]
    timestamp_ms: int
    utilization_pct: int
    memory_used_bytes: int
    temperature_c: int
    power_w: float
    def __init__(self, timestamp_ms: _Optional[int] = ..., utilization_pct: _Optional[int] = ..., memory_used_bytes: _Optional[int] = ..., temperature_c: _Optional[int] = ..., power_w: _Optional[float] = ...) -> None: ...

class LeaseGpu(_message.Message):
    __slots__ = ("slot", "uuid", "model", "memory_total_bytes", "current", "xid_count", "last_xid", "healthy", "health_reason", "history")
    SLOT_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    XID_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_XID_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    HEALTH_REASON_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    slot: int
    uuid: str
    model: str
    memory_total_bytes: int
    current: GpuSample
    xid_count: int
    last_xid: int
    healthy: bool
    health_reason: str
    history: _containers.RepeatedCompositeFieldContainer[GpuSample]
    def __init__(self, slot: _Optional[int] = ..., uuid: _Optional[str] = ..., model: _Optional[str] = ..., memory_total_bytes: _Optional[int] = ..., current: _Optional[_Union[GpuSample, _Mapping]] = ..., xid_count: _Optional[int] = ..., last_xid: _Optional[int] = ..., healthy: _Optional[bool] = ..., health_reason: _Optional[str] = ..., history: _Optional[_Iterable[_Union[GpuSample, _Mapping]]] = ...) -> None: ...

class GetLeaseGpusResponse(_message.Message):
    __slots__ = ("lease_id", "gpus", "sample_interval_ms", "history_limit")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    lease_id: int
    gpus: _containers.RepeatedCompositeFieldContainer[LeaseGpu]
    sample_interval_ms: int
    history_limit: int
    def __init__(self, lease_id: _Optional[int] = ..., gpus: _Optional[_Iterable[_Union[LeaseGpu, _Mapping]]] = ..., sample_interval_ms: _Optional[int] = ..., history_limit: _Optional[int] = ...) -> None: ...
