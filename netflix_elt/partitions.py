"""Partitions: ratings are monthly, by the month of the rating's timestamp (UTC).

Keys are ``YYYY-MM`` so the partition key, the object-store folder (``month=YYYY-MM``) and
the dbt window all read the same. ``end_offset=1`` includes the current month, so a month
that is still filling up can be delivered and loaded.
"""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg

from netflix_elt.movielens import RATINGS_START_MONTH

MONTH_FMT = "%Y-%m"

ratings_monthly = dg.MonthlyPartitionsDefinition(
    start_date=RATINGS_START_MONTH[:7], fmt=MONTH_FMT, end_offset=1, timezone="UTC"
)


def month_window(month: str) -> tuple[datetime, datetime]:
    """The half-open window [start, end) of a month key, in UTC."""
    start = datetime.strptime(month, MONTH_FMT).replace(tzinfo=timezone.utc)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def months_in_window(start: datetime, end: datetime) -> list[str]:
    """Month keys covering the half-open window [start, end)."""
    months, cursor = [], start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while cursor < end:
        months.append(cursor.strftime(MONTH_FMT))
        cursor = month_window(cursor.strftime(MONTH_FMT))[1]
    return months
