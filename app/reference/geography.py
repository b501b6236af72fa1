"""Where customers live, where the warehouses stand and where suppliers ship from: fixed tables, in order."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Market:
    """A country customers order from, the Mimesis locale its names come from, and its share of customers."""

    country: str
    locale: str
    share: float


@dataclass(frozen=True)
class WarehouseSite:
    """A fulfilment centre's region, place and relative throughput (1.0 for the largest hubs)."""

    region: str
    city: str
    country: str
    throughput: float


@dataclass(frozen=True)
class SupplierCountry:
    """A sourcing country: its share of suppliers, lead times in days, and how its firms are named."""

    country: str
    share: float
    lead_days: tuple[int, int]
    legal_suffixes: tuple[str, ...]
    #: Mimesis locale for surname-based firm names, or None to use ``stems``.
    locale: str | None = None
    stems: tuple[str, ...] = ()


MARKETS: tuple[Market, ...] = (
    Market("US", "en", 0.44),
    Market("GB", "en-gb", 0.12),
    Market("DE", "de", 0.10),
    Market("FR", "fr", 0.08),
    Market("CA", "en-ca", 0.07),
    Market("ES", "es", 0.05),
    Market("IT", "it", 0.05),
    Market("NL", "nl", 0.04),
    Market("AU", "en-au", 0.03),
    Market("SE", "sv", 0.02),
)

#: Taken in this order: the first five cover the main markets, which is the default N_WAREHOUSES.
WAREHOUSE_SITES: tuple[WarehouseSite, ...] = (
    WarehouseSite("us-east", "Secaucus", "US", 1.0),
    WarehouseSite("us-west", "Fontana", "US", 1.0),
    WarehouseSite("eu-central", "Frankfurt am Main", "DE", 0.8),
    WarehouseSite("uk-midlands", "Daventry", "GB", 0.7),
    WarehouseSite("us-central", "Dallas", "US", 0.8),
    WarehouseSite("ca-east", "Brampton", "CA", 0.5),
    WarehouseSite("eu-west", "Venlo", "NL", 0.6),
    WarehouseSite("us-southeast", "McDonough", "US", 0.6),
    WarehouseSite("fr-north", "Lille", "FR", 0.5),
    WarehouseSite("es-central", "Madrid", "ES", 0.4),
    WarehouseSite("it-north", "Piacenza", "IT", 0.4),
    WarehouseSite("us-midwest", "Joliet", "US", 0.6),
    WarehouseSite("us-northwest", "Kent", "US", 0.5),
    WarehouseSite("ca-west", "Calgary", "CA", 0.3),
    WarehouseSite("au-east", "Sydney", "AU", 0.3),
    WarehouseSite("se-south", "Jönköping", "SE", 0.3),
    WarehouseSite("uk-north", "Doncaster", "GB", 0.4),
    WarehouseSite("us-mountain", "Salt Lake City", "US", 0.4),
    WarehouseSite("eu-east", "Poznań", "PL", 0.4),
    WarehouseSite("us-northeast", "Allentown", "US", 0.5),
)

SUPPLIER_COUNTRIES: tuple[SupplierCountry, ...] = (
    SupplierCountry(
        "CN", 0.28, (25, 45), ("Co., Ltd.",),
        stems=("Shenzhen Huatai", "Ningbo Jinlong", "Dongguan Xinyu", "Yiwu Tianrui", "Guangzhou Ruifeng",
               "Xiamen Meida", "Suzhou Yongsheng", "Qingdao Haoyu", "Foshan Kaida", "Hangzhou Mingde"),
    ),
    SupplierCountry("US", 0.18, (3, 10), ("Inc.", "LLC", "Corp."), locale="en"),
    SupplierCountry("DE", 0.07, (7, 18), ("GmbH", "AG", "GmbH & Co. KG"), locale="de"),
    SupplierCountry(
        "VN", 0.07, (28, 50), ("Co., Ltd.", "JSC"),
        stems=("Phuc Thinh", "An Phat", "Minh Long", "Hoang Gia", "Thanh Cong", "Binh Minh", "Dai Viet"),
    ),
    SupplierCountry(
        "IN", 0.07, (25, 45), ("Pvt. Ltd.", "Ltd."),
        stems=("Shree Ganesh", "Sai Krishna", "Kaveri", "Vardhman", "Lakshmi", "Surya", "Om Sai", "Navkar"),
    ),
    SupplierCountry("MX", 0.06, (5, 14), ("S.A. de C.V.",), locale="es-mx"),
    SupplierCountry("IT", 0.05, (8, 20), ("S.p.A.", "S.r.l."), locale="it"),
    SupplierCountry(
        "TW", 0.05, (25, 40), ("Co., Ltd.", "Corp."),
        stems=("Chen Hsing", "Yuan Tai", "Hong Yi", "Da Sheng", "Kuo Feng", "Jin Ding", "Fu Chang"),
    ),
    SupplierCountry(
        "JP", 0.04, (20, 35), ("Co., Ltd.", "K.K."),
        stems=("Daiwa", "Sanko", "Hoshino", "Kyowa", "Nishida", "Takahara", "Maruyoshi"),
    ),
    SupplierCountry(
        "KR", 0.04, (20, 35), ("Co., Ltd.",),
        stems=("Hanil", "Daesung", "Samhwa", "Jinwoo", "Dongbang", "Seojin", "Haesol"),
    ),
    SupplierCountry("GB", 0.04, (6, 16), ("Ltd", "plc"), locale="en-gb"),
    SupplierCountry("TR", 0.03, (12, 25), ("A.Ş.", "Ltd. Şti."), locale="tr"),
    SupplierCountry("PL", 0.02, (6, 15), ("Sp. z o.o.", "S.A."), locale="pl"),
)
