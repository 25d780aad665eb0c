"""How the assets meet object-store faults: retry what can pass, fail fast on what cannot.

A timeout, a refused connection or an object that vanished between listing and reading is
transient: the step asks Dagster to run it again (``RetryRequested``), with exponential
backoff, at most ``MAX_STORE_RETRIES`` times (it re-lists, so a vanished object is simply not
there any more). No such bucket, access denied or bad credentials are permanent: the step fails
at once, with a message that names the endpoint, bucket and key (never a credential).

Only these faults are retried. The assets carry no ``RetryPolicy``: a policy retries every
exception, so a truncated object, a wrong header or a bug would fail four times over ~25 s
with the same message. Whole-object problems and everything else fail on the first attempt.
"""

import contextlib
import random

import dagster as dg

from netflix_elt.resources.object_store import ObjectStoreError

MAX_STORE_RETRIES = 3
FIRST_DELAY_S = 1.0


def retry_delay(attempt: int) -> float:
    """1 s, 2 s, 4 s... (+/- 25 % jitter, so runs that failed together do not retry together)."""
    return FIRST_DELAY_S * (2**attempt) * random.uniform(0.75, 1.25)


@contextlib.contextmanager
def store_faults():
    try:
        yield
    except ObjectStoreError as err:
        if not err.transient:
            raise dg.Failure(str(err), allow_retries=False) from None
        attempt = dg.AssetExecutionContext.get().retry_number
        raise dg.RetryRequested(max_retries=MAX_STORE_RETRIES, seconds_to_wait=retry_delay(attempt)) from err
