"""The S3-compatible artifact endpoint through boto3's s3 client and `aws s3api`."""

from __future__ import annotations

import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sluice_testlib import REGION, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, stored_bytes, unique


def s3_client(endpoint: str, secret: str = ROOT_SECRET_ACCESS_KEY, key_id: str = ROOT_ACCESS_KEY_ID):
    config = Config(
        s3={"addressing_style": "path"},
        signature_version="s3v4",
        retries={"max_attempts": 1, "total_max_attempts": 1, "mode": "standard"},
    )
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id=key_id, aws_secret_access_key=secret, config=config,
    )


@pytest.fixture(scope="module")
def s3(endpoint):
    return s3_client(endpoint)


@pytest.fixture
def bucket():
    return unique("bkt").lower().replace("_", "-")


def code_of(err: ClientError) -> tuple[int, str]:
    return err.response["ResponseMetadata"]["HTTPStatusCode"], err.response["Error"]["Code"]


def test_put_get_head_delete_round_trip(s3, bucket, server):
    body = b"artifact bytes \x00\xff" * 1000
    put = s3.put_object(Bucket=bucket, Key="builds/out put.zip", Body=body, ContentType="application/zip")
    got = s3.get_object(Bucket=bucket, Key="builds/out put.zip")
    assert got["Body"].read() == body
    assert got["ETag"] == put["ETag"]
    assert got["ContentType"] == "application/zip"
    assert got["ContentLength"] == len(body)
    head = s3.head_object(Bucket=bucket, Key="builds/out put.zip")
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]

    ranged = s3.get_object(Bucket=bucket, Key="builds/out put.zip", Range="bytes=10-19")
    assert ranged["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert ranged["Body"].read() == body[10:20]

    s3.put_object(Bucket=bucket, Key="builds/out put.zip", Body=b"second version")
    assert s3.get_object(Bucket=bucket, Key="builds/out put.zip")["Body"].read() == b"second version"

    s3.delete_object(Bucket=bucket, Key="builds/out put.zip")
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=bucket, Key="builds/out put.zip")
    assert code_of(missing.value) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as head_missing:
        s3.head_object(Bucket=bucket, Key="builds/out put.zip")
    assert code_of(head_missing.value)[0] == 404
    s3.delete_object(Bucket=bucket, Key="never-existed")  # deleting an absent key succeeds


def test_list_objects_v2_prefix_delimiter_and_paging(s3, bucket):
    keys = ["a/1", "a/2", "a/b/3", "a/b/4", "a/c", "a/é & <x>", "b/1", "top"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in listed["Contents"]] == ["a/1", "a/2", "a/c", "a/é & <x>"]
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["a/b/"]
    assert listed["KeyCount"] == 5 and listed["IsTruncated"] is False

    seen, token = [], None
    while True:
        kwargs = {"Bucket": bucket, "MaxKeys": 3}
        if token:
            kwargs["ContinuationToken"] = token
        page = s3.list_objects_v2(**kwargs)
        assert page["KeyCount"] <= 3
        seen += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == sorted(keys, key=lambda k: k.encode())

    after = s3.list_objects_v2(Bucket=bucket, StartAfter="a/c")
    assert [o["Key"] for o in after["Contents"]] == ["a/é & <x>", "b/1", "top"]
    empty = s3.list_objects_v2(Bucket=unique("empty").lower().replace("_", "-"))
    assert empty["KeyCount"] == 0 and "Contents" not in empty
    with pytest.raises(ClientError) as forged:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="forged")
    assert code_of(forged.value)[0] == 400


def test_bad_signatures_and_unknown_keys_are_refused(endpoint, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as wrong_secret:
        s3_client(endpoint, secret="not-the-secret").get_object(Bucket=bucket, Key="k")
    assert code_of(wrong_secret.value) == (403, "SignatureDoesNotMatch")
    with pytest.raises(ClientError) as unknown:
        s3_client(endpoint, key_id="AKIANOSUCHKEY0000000").get_object(Bucket=bucket, Key="k")
    assert code_of(unknown.value) == (403, "InvalidAccessKeyId")


def test_presigned_urls(s3, bucket):
    s3.put_object(Bucket=bucket, Key="shared.txt", Body=b"presigned body")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "shared.txt"}, ExpiresIn=60)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"presigned body"
    tampered = url.replace("shared.txt", "other.txt")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tampered, timeout=10)
    assert refused.value.code == 403


def test_unsupported_requests_are_4xx(s3, bucket):
    with pytest.raises(ClientError) as list_buckets:
        s3.list_buckets()
    assert code_of(list_buckets.value) == (400, "UnsupportedOperation")
    with pytest.raises(ClientError) as multipart:
        s3.create_multipart_upload(Bucket=bucket, Key="big")
    assert code_of(multipart.value) == (400, "UnsupportedOperation")
    with pytest.raises(ClientError) as bad_bucket:
        s3.put_object(Bucket="Bad_Bucket", Key="k", Body=b"x")
    assert code_of(bad_bucket.value) == (400, "InvalidBucketName")


def test_objects_survive_on_disk_durably(s3, bucket, server):
    s3.put_object(Bucket=bucket, Key="durable", Body=b"kept-bytes-0123456789")
    assert b"kept-bytes-0123456789" in stored_bytes(server.data_dir)


def test_aws_cli_s3api(aws_cli, bucket, tmp_path):
    source = tmp_path / "in.txt"
    source.write_bytes(b"from the aws cli")
    put = aws_cli("s3api", "put-object", "--bucket", bucket, "--key", "cli/in.txt", "--body", str(source))
    assert put.returncode == 0, put.stderr
    assert put.json()["ETag"]
    target = tmp_path / "out.txt"
    got = aws_cli("s3api", "get-object", "--bucket", bucket, "--key", "cli/in.txt", str(target))
    assert got.returncode == 0, got.stderr
    assert target.read_bytes() == b"from the aws cli"
    listed = aws_cli("s3api", "list-objects-v2", "--bucket", bucket)
    assert [o["Key"] for o in listed.json()["Contents"]] == ["cli/in.txt"]
    missing = aws_cli("s3api", "head-object", "--bucket", bucket, "--key", "nope")
    assert missing.returncode != 0 and "404" in missing.stderr
