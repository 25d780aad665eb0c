"""The S3 object store (or any S3 API: MinIO, SeaweedFS, moto), through dagster-aws.

Apart from ``object_store`` so that the folder store, the default, never imports boto3.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import ClassVar, Iterator

from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from netflix_elt.resources.object_store import (
    CONTENT_HASH_METADATA,
    PERMANENT_S3_CODES,
    TEMP_PREFIX,
    ObjectStore,
    ObjectStoreError,
    StoredObject,
)


class S3ObjectStore(ObjectStore):
    """S3 or any S3 API (MinIO, SeaweedFS, moto) through dagster-aws's ``S3Resource``.

    Credentials stay inside the boto3 client (environment or instance profile); the resource
    config carries only the endpoint, region and bucket.
    """

    s3: S3Resource
    bucket: str
    work_dir: str = tempfile.gettempdir()

    keeps_content_hash: ClassVar[bool] = True  # in the object's user metadata

    _client = PrivateAttr(default=None)

    def _c(self):
        if self._client is None:
            self._client = self.s3.get_client()
        return self._client

    def describe(self, key: str = "") -> str:
        endpoint = self.s3.endpoint_url or "AWS"
        return f"s3://{self.bucket}/{key} (endpoint {endpoint})"

    def _fail(self, action: str, key: str, exc: Exception) -> ObjectStoreError:
        # botocore messages contain the request, never the secret; we still keep only the
        # error code/text so nothing credential-like can leak into a run log.
        # A timeout or a refused connection has no response (its ``response`` is None).
        code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code", type(exc).__name__)
        return ObjectStoreError(
            f"{action} failed for {self.describe(key)}: {code}: {_short(exc)}", transient=code not in PERMANENT_S3_CODES
        )

    def list_objects(self, prefix: str, start_after: str | None = None, page_size: int = 1000) -> Iterator[StoredObject]:
        kwargs = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": page_size}
        if start_after:
            kwargs["StartAfter"] = start_after
        try:
            for page in self._c().get_paginator("list_objects_v2").paginate(**kwargs):
                for item in page.get("Contents", []):
                    name = item["Key"].rsplit("/", 1)[-1]
                    if name.startswith(TEMP_PREFIX):
                        continue
                    yield StoredObject(
                        key=item["Key"],
                        etag=item["ETag"].strip('"'),
                        size=item["Size"],
                        last_modified=item["LastModified"].timestamp(),
                    )
        except Exception as exc:  # noqa: BLE001 - re-raised with the location
            raise self._fail("listing", prefix, exc) from None

    def head(self, key: str) -> StoredObject:
        try:
            r = self._c().head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001
            raise self._fail("head", key, exc) from None
        return StoredObject(key=key, etag=r["ETag"].strip('"'), size=r["ContentLength"], last_modified=r["LastModified"].timestamp())

    def put_file(self, path: Path, key: str, content_hash: str | None = None) -> StoredObject:
        extra = {"Metadata": {CONTENT_HASH_METADATA: content_hash}} if content_hash else None
        try:
            self._c().upload_file(str(path), self.bucket, key, ExtraArgs=extra)  # multipart, streamed from disk
        except Exception as exc:  # noqa: BLE001
            raise self._fail("upload", key, exc) from None
        return self.head(key)

    def stored_content_hash(self, key: str) -> str | None:
        try:
            r = self._c().head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:  # noqa: BLE001
            raise self._fail("head", key, exc) from None
        return r.get("Metadata", {}).get(CONTENT_HASH_METADATA) or None

    @contextlib.contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        Path(self.work_dir).mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="download-", suffix=".csv", dir=self.work_dir)
        os.close(fd)
        try:
            try:
                self._c().download_file(self.bucket, key, tmp)  # streamed to disk, not memory
            except Exception as exc:  # noqa: BLE001
                raise self._fail("download", key, exc) from None
            yield Path(tmp)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


class BoundedS3Resource(S3Resource):
    """dagster-aws's ``S3Resource`` whose client waits a bounded time for the endpoint.

    ``S3Resource`` sets botocore's retries only, which leaves botocore's 60 s connect and 60 s
    read timeouts. Here each request attempt waits at most ``connect_timeout_s`` to connect and
    ``read_timeout_s`` per socket read (a slow download is fine, a silent endpoint is not), and
    one call makes at most ``max_attempts + 1`` attempts (botocore's standard retry mode: the
    first try and ``max_attempts`` retries, backoff < 1 + 2 + 4 s). So an endpoint that accepts
    connections and never answers fails a call within ``(max_attempts + 1) * (connect + read) + 7``
    seconds, a host that does not answer the connection within ``(max_attempts + 1) * connect + 7``
    (a refused connection fails at once).
    """

    connect_timeout_s: int = Field(default=5, description="seconds to wait for a connection, per attempt")
    read_timeout_s: int = Field(default=30, description="seconds to wait for each read of a response, per attempt")

    def get_client(self):
        import boto3
        from botocore.config import Config
        from dagster_aws.s3.utils import construct_boto_client_retry_config

        config = construct_boto_client_retry_config(self.max_attempts).merge(
            Config(connect_timeout=self.connect_timeout_s, read_timeout=self.read_timeout_s)
        )
        # What dagster-aws's construct_s3_client does, with the bounded config.
        client = boto3.session.Session(profile_name=self.profile_name).client(
            "s3", region_name=self.region_name, use_ssl=self.use_ssl, verify=self.verify,
            endpoint_url=self.endpoint_url, aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key, aws_session_token=self.aws_session_token,
            config=config,
        )
        if self.use_unsigned_session:
            from botocore.handlers import disable_signing

            client.meta.events.register("choose-signer.s3.*", disable_signing)
        return client


def _short(exc: Exception, limit: int = 300) -> str:
    text = str(exc).replace("\n", " ")
    return text[:limit]
