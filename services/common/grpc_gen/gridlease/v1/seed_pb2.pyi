from services.common.grpc_gen.gridlease.v1 import offer_pb2 as _offer_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OfferEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OFFER_EVENT_TYPE_UNSPECIFIED: _ClassVar[OfferEventType]
    OFFER_EVENT_TYPE_STORED: _ClassVar[OfferEventType]
    OFFER_EVENT_TYPE_EXPIRED: _ClassVar[OfferEventType]
    OFFER_EVENT_TYPE_HEARTBEAT: _ClassVar[OfferEventType]
OFFER_EVENT_TYPE_UNSPECIFIED: OfferEventType
OFFER_EVENT_TYPE_STORED: OfferEventType
OFFER_EVENT_TYPE_EXPIRED: OfferEventType
OFFER_EVENT_TYPE_HEARTBEAT: OfferEventType

class AnnounceRequest(_message.Message):
    __slots__ = ("signed_offer",)
    SIGNED_OFFER_FIELD_NUMBER: _ClassVar[int]
    signed_offer: _offer_pb2.SignedOffer
    def __init__(self, signed_offer: _Optional[_Union[_offer_pb2.SignedOffer, _Mapping]] = ...) -> None: ...

class AnnounceResponse(_message.Message):
    __slots__ = ("machine_id", "sequence")
    MACHINE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    machine_id: bytes
    sequence: int
    def __init__(self, machine_id: _Optional[bytes] = ..., sequence: _Optional[int] = ...) -> None: ...

class GetOfferRequest(_message.Message):
    __slots__ = ("machine_id",)
    MACHINE_ID_FIELD_NUMBER: _ClassVar[int]
    machine_id: bytes
    def __init__(self, machine_id: _Optional[bytes] = ...) -> None: ...

class GetOfferResponse(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: OfferEntry
    def __init__(self, entry: _Optional[_Union[OfferEntry, _Mapping]] = ...) -> None: ...

class OfferEntry(_message.Message):
    __slots__ = ("offer", "signed_offer")
    OFFER_FIELD_NUMBER: _ClassVar[int]
    SIGNED_OFFER_FIELD_NUMBER: _ClassVar[int]
    offer: _offer_pb2.Offer
    signed_offer: _offer_pb2.SignedOffer
    def __init__(self, offer: _Optional[_Union[_offer_pb2.Offer, _Mapping]] = ..., signed_offer: _Optional[_Union[_offer_pb2.SignedOffer, _Mapping]] = ...) -> None: ...

class OfferFilter(_message.Message):
    __slots__ = ("gpu_model", "min_gpu_count", "min_memory_mib", "max_price_per_gpu_per_block", "region", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    GPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    MIN_GPU_COUNT_FIELD_NUMBER: _ClassVar[int]
    MIN_MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    MAX_PRICE_PER_GPU_PER_BLOCK_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    gpu_model: str
    min_gpu_count: int
    min_memory_mib: int
    max_price_per_gpu_per_block: str
    region: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, gpu_model: _Optional[str] = ..., min_gpu_count: _Optional[int] = ..., min_memory_mib: _Optional[int] = ..., max_price_per_gpu_per_block: _Optional[str] = ..., region: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListOffersRequest(_message.Message):
    __slots__ = ("filter", "page_size", "page_token")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    filter: OfferFilter
    page_size: int
    page_token: str
    def __init__(self, filter: _Optional[_Union[OfferFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListOffersResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[OfferEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[OfferEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchOffersRequest(_message.Message):
    __slots__ = ("filter", "include_existing", "heartbeat_interval_ms")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_EXISTING_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    filter: OfferFilter
    include_existing: bool
    heartbeat_interval_ms: int
    def __init__(self, filter: _Optional[_Union[OfferFilter, _Mapping]] = ..., include_existing: _Optional[bool] = ..., heartbeat_interval_ms: _Optional[int] = ...) -> None: ...

class WatchOffersResponse(_message.Message):
    __slots__ = ("type", "entry")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    type: OfferEventType
    entry: OfferEntry
    def __init__(self, type: _Optional[_Union[OfferEventType, str]] = ..., entry: _Optional[_Union[OfferEntry, _Mapping]] = ...) -> None: ...

class DigestRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "known_root")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    KNOWN_ROOT_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    known_root: bytes
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., known_root: _Optional[bytes] = ...) -> None: ...

class DigestEntry(_message.Message):
    __slots__ = ("machine_id", "sequence")
    MACHINE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    machine_id: bytes
    sequence: int
    def __init__(self, machine_id: _Optional[bytes] = ..., sequence: _Optional[int] = ...) -> None: ...

class DigestResponse(_message.Message):
    __slots__ = ("entries", "next_page_token", "root", "in_sync")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ROOT_FIELD_NUMBER: _ClassVar[int]
    IN_SYNC_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[DigestEntry]
    next_page_token: str
    root: bytes
    in_sync: bool
    def __init__(self, entries: _Optional[_Iterable[_Union[DigestEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., root: _Optional[bytes] = ..., in_sync: _Optional[bool] = ...) -> None: ...

class FetchOffersRequest(_message.Message):
    __slots__ = ("machine_ids",)
    MACHINE_IDS_FIELD_NUMBER: _ClassVar[int]
    machine_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, machine_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class FetchOffersResponse(_message.Message):
    __slots__ = ("signed_offers",)
    SIGNED_OFFERS_FIELD_NUMBER: _ClassVar[int]
    signed_offers: _containers.RepeatedCompositeFieldContainer[_offer_pb2.SignedOffer]
    def __init__(self, signed_offers: _Optional[_Iterable[_Union[_offer_pb2.SignedOffer, _Mapping]]] = ...) -> None: ...
