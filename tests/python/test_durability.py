"""Acknowledged changes survive `kill -9`: every reply comes after the commit."""

from __future__ import annotations

import boto3
from botocore.config import Config

from sluice_testlib import REGION, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, SluiceServer, two_stage_pipeline, unique


def client(server: SluiceServer, service: str):
    config = Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"}, signature_version="s3v4")
    return boto3.client(
        service, endpoint_url=server.endpoint, region_name=REGION,
        aws_access_key_id=ROOT_ACCESS_KEY_ID, aws_secret_access_key=ROOT_SECRET_ACCESS_KEY, config=config,
    )


def test_kill_9_loses_nothing_acknowledged(tmp_path):
    server = SluiceServer(tmp_path / "data", tmp_path, name="durable").start()
    cp = client(server, "codepipeline")
    s3 = client(server, "s3")
    names = [unique("kept") for _ in range(5)]
    provider = unique("Kept")[:35]
    cp.create_custom_action_type(
        category="Build", provider=provider, version="1",
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
    )
    for name in names:
        cp.create_pipeline(pipeline=two_stage_pipeline(name), tags=[{"key": "k", "value": name}])
    cp.update_pipeline(pipeline=two_stage_pipeline(names[0]))
    s3.put_object(Bucket="durable-bucket", Key="a/b.bin", Body=b"\x01" * 4096)
    server.kill()  # SIGKILL right after the last acknowledged reply

    again = SluiceServer(tmp_path / "data", tmp_path, name="restarted").start()
    try:
        cp = client(again, "codepipeline")
        s3 = client(again, "s3")
        listed = {p["name"]: p["version"] for p in cp.list_pipelines()["pipelines"]}
        assert {name: listed.get(name) for name in names} == {name: 2 if name == names[0] else 1 for name in names}
        arn = cp.get_pipeline(name=names[3])["metadata"]["pipelineArn"]
        assert cp.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "k", "value": names[3]}]
        assert s3.get_object(Bucket="durable-bucket", Key="a/b.bin")["Body"].read() == b"\x01" * 4096
        custom = cp.list_action_types(actionOwnerFilter="Custom")["actionTypes"]
        assert provider in [t["id"]["provider"] for t in custom]
    finally:
        again.stop()

