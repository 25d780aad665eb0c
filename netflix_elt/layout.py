"""Where each dataset lives in the bucket, and which keys belong to which asset.

The layout is part of the catalogue's contract with the outside world:

    raw/<dataset>/<name>.csv                      unpartitioned datasets
    raw/ratings/month=YYYY-MM/<name>.csv          ratings, one folder per month of rating time

``classify`` is the inverse, used by the loaders and the sensor: a key that does not match
(stray files, zero-byte "folder" markers, temporary upload names) classifies as ``None``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from netflix_elt.movielens import DATASETS_BY_NAME, RAW_PREFIX, Dataset

_KEY = re.compile(
    r"^" + re.escape(RAW_PREFIX) + r"(?P<dataset>[a-z_]+)/(?:month=(?P<month>\d{4}-(?:0[1-9]|1[0-2]))/)?(?P<name>[^/]+)$"
)
_TEMP_NAME = re.compile(r"^(\.|_)|\.(tmp|part|partial|crdownload)$|~$", re.IGNORECASE)


@dataclass(frozen=True)
class ObjectSlot:
    dataset: Dataset
    month: str | None  # YYYY-MM for ratings; None otherwise


def dataset_prefix(ds: Dataset) -> str:
    return f"{RAW_PREFIX}{ds.name}/"


def month_prefix(ds: Dataset, month: str) -> str:
    return f"{dataset_prefix(ds)}month={month}/"


def object_key(ds: Dataset, month: str | None = None) -> str:
    if ds.partitioned_by_month:
        if month is None:
            raise ValueError(f"{ds.name} is delivered per month: a month is required")
        return f"{month_prefix(ds, month)}{ds.file_name}"
    return f"{dataset_prefix(ds)}{ds.file_name}"


def classify(key: str, size: int | None = None) -> ObjectSlot | None:
    """The dataset (and month) a key belongs to, or None if it is not a delivery."""
    m = _KEY.match(key)
    if not m or (size is not None and size == 0 and key.endswith("/")):
        return None
    ds = DATASETS_BY_NAME.get(m["dataset"])
    name = m["name"]
    if ds is None or _TEMP_NAME.search(name) or not name.lower().endswith(".csv"):
        return None
    if ds.partitioned_by_month != (m["month"] is not None):
        return None
    return ObjectSlot(ds, m["month"])
