"""ListPipelines paging with nextToken, and tags on pipelines."""

from __future__ import annotations

import base64

import pytest
from botocore.exceptions import ClientError

from sluice_testlib import ACCOUNT_ID, REGION, two_stage_pipeline, unique


def error_of(excinfo) -> tuple[int, str]:
    response = excinfo.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def pipeline_arn(name: str) -> str:
    return f"arn:aws:codepipeline:{REGION}:{ACCOUNT_ID}:{name}"


def page_through(call, key: str, page_size: int, **kwargs) -> tuple[list, list[int]]:
    items, sizes, token = [], [], None
    for _ in range(500):
        args = dict(kwargs, maxResults=page_size)
        if token:
            args["nextToken"] = token
        page = call(**args)
        items.extend(page[key])
        sizes.append(len(page[key]))
        token = page.get("nextToken")
        if not token:
            return items, sizes
    raise AssertionError("paging never ended")


def test_list_pipelines_pages_without_duplicates_or_gaps(cp):
    prefix = unique("page")
    created = {f"{prefix}-{i}" for i in range(7)}
    for name in sorted(created):
        cp.create_pipeline(pipeline=two_stage_pipeline(name))

    everything, _ = page_through(cp.list_pipelines, "pipelines", 100)
    expected = [p["name"] for p in everything]
    assert len(expected) == len(set(expected))
    assert created <= set(expected)

    paged, sizes = page_through(cp.list_pipelines, "pipelines", 3)
    names = [p["name"] for p in paged]
    assert len(names) == len(set(names)), f"duplicates across pages: {names}"
    assert set(names) == set(expected), "pages skipped or invented pipelines"
    assert all(size <= 3 for size in sizes), sizes
    assert all(size == 3 for size in sizes[:-1]), f"only the last page may be short: {sizes}"
    assert len(sizes) >= 3


def test_forged_next_tokens_are_refused(cp):
    for name in (unique("tok-a"), unique("tok-b")):
        cp.create_pipeline(pipeline=two_stage_pipeline(name))
    genuine = cp.list_pipelines(maxResults=1)["nextToken"]

    flipped = genuine[:-2] + ("A" if genuine[-2] != "A" else "B") + genuine[-1]
    forged = [
        "not-a-token",
        base64.urlsafe_b64encode(b"pipelines\nzzz").decode().rstrip("="),
        flipped,
    ]
    for token in forged:
        with pytest.raises(ClientError) as excinfo:
            cp.list_pipelines(nextToken=token)
        assert error_of(excinfo) == (400, "InvalidNextTokenException"), token

    # A token minted for another listing must not be accepted here.
    name = unique("tok-tags")
    cp.create_pipeline(
        pipeline=two_stage_pipeline(name),
        tags=[{"key": "a", "value": "1"}, {"key": "b", "value": "2"}],
    )
    tag_token = cp.list_tags_for_resource(resourceArn=pipeline_arn(name), maxResults=1)["nextToken"]
    with pytest.raises(ClientError) as excinfo:
        cp.list_pipelines(nextToken=tag_token)
    assert error_of(excinfo) == (400, "InvalidNextTokenException")
    with pytest.raises(ClientError) as excinfo:
        cp.list_tags_for_resource(resourceArn=pipeline_arn(name), nextToken=genuine)
    assert error_of(excinfo) == (400, "InvalidNextTokenException")


def tags_of(cp, arn: str) -> dict:
    items, _ = page_through(cp.list_tags_for_resource, "tags", 50, resourceArn=arn)
    return {t["key"]: t["value"] for t in items}


def test_tags_on_a_pipeline(cp):
    name = unique("tagged")
    arn = pipeline_arn(name)
    created = cp.create_pipeline(pipeline=two_stage_pipeline(name), tags=[{"key": "team", "value": "core"}])
    assert created["tags"] == [{"key": "team", "value": "core"}]
    assert tags_of(cp, arn) == {"team": "core"}

    cp.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "prod"}, {"key": "cost", "value": "42"}])
    assert tags_of(cp, arn) == {"team": "core", "env": "prod", "cost": "42"}

    # Tagging an existing key replaces its value.
    cp.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "staging"}])
    assert tags_of(cp, arn) == {"team": "core", "env": "staging", "cost": "42"}

    one_by_one, sizes = page_through(cp.list_tags_for_resource, "tags", 1, resourceArn=arn)
    keys = [t["key"] for t in one_by_one]
    assert sorted(keys) == ["cost", "env", "team"], keys
    assert sizes == [1, 1, 1] or sizes == [1, 1, 1, 0], sizes

    # Updating the declaration leaves the tags alone.
    updated = two_stage_pipeline(name)
    updated["stages"][1]["actions"][0]["configuration"]["CustomData"] = "changed"
    assert cp.update_pipeline(pipeline=updated)["pipeline"]["version"] == 2
    assert tags_of(cp, arn) == {"team": "core", "env": "staging", "cost": "42"}

    cp.untag_resource(resourceArn=arn, tagKeys=["env", "not-there"])
    assert tags_of(cp, arn) == {"team": "core", "cost": "42"}

    with pytest.raises(ClientError) as excinfo:
        cp.tag_resource(resourceArn=arn, tags=[{"key": "aws:reserved", "value": "x"}])
    assert error_of(excinfo) == (400, "InvalidTagsException")
    assert tags_of(cp, arn) == {"team": "core", "cost": "42"}

    # Tags go with the pipeline: a new pipeline of the same name starts untagged.
    cp.delete_pipeline(name=name)
    cp.create_pipeline(pipeline=two_stage_pipeline(name))
    assert tags_of(cp, arn) == {}


def test_reserved_tag_keys_at_create(cp):
    name = unique("awstag")
    with pytest.raises(ClientError) as excinfo:
        cp.create_pipeline(pipeline=two_stage_pipeline(name), tags=[{"key": "aws:owner", "value": "me"}])
    assert error_of(excinfo) == (400, "InvalidTagsException")
    with pytest.raises(ClientError) as excinfo:
        cp.get_pipeline(name=name)
    assert error_of(excinfo) == (400, "PipelineNotFoundException")


def test_tags_on_an_unknown_pipeline(cp):
    arn = pipeline_arn(unique("nobody"))
    with pytest.raises(ClientError) as excinfo:
        cp.tag_resource(resourceArn=arn, tags=[{"key": "k", "value": "v"}])
    assert error_of(excinfo) == (400, "ResourceNotFoundException")
    with pytest.raises(ClientError) as excinfo:
        cp.list_tags_for_resource(resourceArn=arn)
    assert error_of(excinfo) == (400, "ResourceNotFoundException")
    with pytest.raises(ClientError) as excinfo:
        cp.untag_resource(resourceArn=arn, tagKeys=["k"])
    assert error_of(excinfo) == (400, "ResourceNotFoundException")


def test_tags_on_a_custom_action_type(cp):
    provider = unique("Tagged")
    cp.create_custom_action_type(
        category="Test",
        provider=provider,
        version="1",
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
        tags=[{"key": "owner", "value": "qa"}],
    )
    arn = f"arn:aws:codepipeline:{REGION}:{ACCOUNT_ID}:actiontype:Custom/Test/{provider}/1"
    assert tags_of(cp, arn) == {"owner": "qa"}
    cp.tag_resource(resourceArn=arn, tags=[{"key": "tier", "value": "gold"}])
    assert tags_of(cp, arn) == {"owner": "qa", "tier": "gold"}


def test_tag_limits(cp):
    name = unique("limits")
    arn = pipeline_arn(name)
    cp.create_pipeline(pipeline=two_stage_pipeline(name))

    with pytest.raises(ClientError) as excinfo:
        cp.tag_resource(resourceArn=arn, tags=[{"key": "k", "value": "1"}, {"key": "k", "value": "2"}])
    assert error_of(excinfo) == (400, "InvalidTagsException")

    with pytest.raises(ClientError) as excinfo:
        cp.tag_resource(resourceArn=arn, tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])
    assert error_of(excinfo) == (400, "TooManyTagsException")
    assert tags_of(cp, arn) == {}

    cp.tag_resource(resourceArn=arn, tags=[{"key": f"k{i}", "value": "v"} for i in range(50)])
    assert len(tags_of(cp, arn)) == 50
    # Re-tagging an existing key is not a 51st tag ...
    cp.tag_resource(resourceArn=arn, tags=[{"key": "k0", "value": "changed"}])
    assert tags_of(cp, arn)["k0"] == "changed"
    # ... but a new key is.
    with pytest.raises(ClientError) as excinfo:
        cp.tag_resource(resourceArn=arn, tags=[{"key": "one-more", "value": "v"}])
    assert error_of(excinfo) == (400, "TooManyTagsException")
    assert len(tags_of(cp, arn)) == 50

    with pytest.raises(ClientError) as excinfo:
        cp.tag_resource(resourceArn=arn, tags=[{"key": "x" * 129, "value": "v"}])
    assert error_of(excinfo) == (400, "ValidationException")

    with pytest.raises(ClientError) as excinfo:
        cp.create_pipeline(pipeline=two_stage_pipeline(unique("limits")),
                           tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])
    assert error_of(excinfo) == (400, "TooManyTagsException")
