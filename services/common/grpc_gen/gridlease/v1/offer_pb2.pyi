from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GpuInventory(_message.Message):
    __slots__ = ("model", "count", "memory_mib", "compute_capability")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    model: str
    count: int
    memory_mib: int
    compute_capability: str
    def __init__(self, model: _Optional[str] = ..., count: _Optional[int] = ..., memory_mib: _Optional[int] = ..., compute_capability: _Optional[str] = ...) -> None: ...

class HostResources(_message.Message):
    __slots__ = ("cpu_millicores", "memory_mib")
    CPU_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    cpu_millicores: int
    memory_mib: int
    def __init__(self, cpu_millicores: _Optional[int] = ..., memory_mib: _Optional[int] = ...) -> None: ...

class Offer(_message.Message):
    __slots__ = ("machine_id", "provider", "operator_public_key", "endpoint", "gpu", "price_per_gpu_per_block", "region", "labels", "sequence", "timestamp_ms", "host")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MACHINE_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    GPU_FIELD_NUMBER: _ClassVar[int]
    PRICE_PER_GPU_PER_BLOCK_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    machine_id: bytes
    provider: str
    operator_public_key: bytes
    endpoint: str
    gpu: GpuInventory
    price_per_gpu_per_block: str
    region: str
    labels: _containers.ScalarMap[str, str]
    sequence: int
    timestamp_ms: int
    host: HostResources
    def __init__(self, machine_id: _Optional[bytes] = ..., provider: _Optional[str] = ..., operator_public_key: _Optional[bytes] = ..., endpoint: _Optional[str] = ..., gpu: _Optional[_Union[GpuInventory, _Mapping]] = ..., price_per_gpu_per_block: _Optional[str] = ..., region: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., sequence: _Optional[int] = ..., timestamp_ms: _Optional[int] = ..., host: _Optional[_Union[HostResources, _Mapping]] = ...) -> None: ...

class SignedOffer(_message.Message):
    __slots__ = ("offer", "signature")
    OFFER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    offer: bytes
    signature: bytes
    def __init__(self, offer: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...
