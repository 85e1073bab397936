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
