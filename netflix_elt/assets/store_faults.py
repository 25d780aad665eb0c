"""How the assets meet object-store faults: retry what can pass, fail fast on what cannot.

A timeout, a refused connection or an object that vanished between listing and reading is
transient: the step fails and Dagster's retry policy runs it again with exponential backoff
(it re-lists, so a vanished object is simply not there any more). No such bucket, access
denied or bad credentials are permanent: the step fails at once, with a message that names
the endpoint, bucket and key (never a credential), and is not retried.
"""

import contextlib

import dagster as dg

from netflix_elt.resources.object_store import ObjectStoreError

STORE_RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=1, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


@contextlib.contextmanager
def store_faults():
    try:
        yield
    except ObjectStoreError as err:
        if err.transient:
            raise  # the retry policy takes it from here
        raise dg.Failure(str(err), allow_retries=False) from None
