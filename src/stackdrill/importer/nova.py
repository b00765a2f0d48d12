"""The Nova-style inventory export: one JSON document holding the API's own objects,
as `GET /servers/detail` (microversion >= 2.47: the flavor embedded), Cinder's
`GET /volumes/detail` and Neutron's `GET /networks` and `GET /subnets` return them, e.g.

    {"servers": [...], "volumes": [...], "networks": [...], "subnets": [...]}

Only the fields placement needs are read; the API's other fields are ignored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from stackdrill.importer.files import parse_json


class _Api(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class Flavor(_Api):
    original_name: str
    vcpus: int = Field(gt=0)
    ram: int = Field(gt=0, description="MiB")


class Address(_Api):
    addr: str
    mac: str | None = Field(default=None, alias="OS-EXT-IPS-MAC:mac_addr")
    version: int = 4


class AttachedVolume(_Api):
    id: str


class Server(_Api):
    id: str
    name: str
    host: str | None = Field(alias="OS-EXT-SRV-ATTR:host")
    instance_name: str | None = Field(default=None, alias="OS-EXT-SRV-ATTR:instance_name")
    flavor: Flavor
    addresses: dict[str, tuple[Address, ...]] = Field(default_factory=dict)
    volumes_attached: tuple[AttachedVolume, ...] = Field(
        default=(), alias="os-extended-volumes:volumes_attached")


class Volume(_Api):
    id: str
    name: str | None = None
    size: int = Field(gt=0, description="GiB")
    host: str | None = Field(default=None, alias="os-vol-host-attr:host")


class Network(_Api):
    id: str
    name: str
    mtu: int | None = None
    segmentation_id: int | None = Field(default=None, alias="provider:segmentation_id")


class Subnet(_Api):
    network_id: str
    cidr: str
    ip_version: int = 4


class Inventory(_Api):
    servers: tuple[Server, ...] = Field(max_length=10000)
    volumes: tuple[Volume, ...] = Field(default=(), max_length=10000)
    networks: tuple[Network, ...] = Field(default=(), max_length=1000)
    subnets: tuple[Subnet, ...] = Field(default=(), max_length=1000)

    def network_cidr(self, name: str) -> str | None:
        net = next((n for n in self.networks if n.name == name), None)
        if net is None:
            return None
        return next((s.cidr for s in self.subnets
                     if s.network_id == net.id and s.ip_version == 4), None)


def parse_inventory(text: str, file: str) -> Inventory:
    return parse_json(text, file, Inventory)
