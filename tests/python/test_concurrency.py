"""Parallel writers through boto3: no 5xx, no lost or duplicated versions, one winner per name."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from sluice_testlib import two_stage_pipeline, unique

WORKERS = 8


@pytest.fixture(scope="module")
def pool():
    with ThreadPoolExecutor(max_workers=WORKERS) as executor:
        yield executor


def outcome(call):
    try:
        return ("ok", call())
    except ClientError as err:
        response = err.response
        return (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"])


def test_same_name_created_in_parallel(cp, pool):
    name = unique("race")
    results = list(pool.map(lambda _: outcome(lambda: cp.create_pipeline(pipeline=two_stage_pipeline(name))),
                            range(WORKERS)))
    wins = [r for r in results if r[0] == "ok"]
    losses = [r for r in results if r[0] != "ok"]
    assert len(wins) == 1, results
    assert all(r == ("PipelineNameInUseException", 400) for r in losses), results
    assert cp.get_pipeline(name=name)["pipeline"]["version"] == 1


def test_distinct_pipelines_created_in_parallel(cp, pool):
    names = [unique("burst") for _ in range(WORKERS * 2)]
    results = list(pool.map(lambda n: outcome(lambda: cp.create_pipeline(pipeline=two_stage_pipeline(n))), names))
    assert all(r[0] == "ok" for r in results), results
    listed = {p["name"] for p in cp.list_pipelines(maxResults=100)["pipelines"]}
    listed_all = set(listed)
    token = None
    while True:
        page = cp.list_pipelines(maxResults=100, **({"nextToken": token} if token else {}))
        listed_all |= {p["name"] for p in page["pipelines"]}
        token = page.get("nextToken")
        if not token:
            break
    assert set(names) <= listed_all


def test_updates_in_parallel_get_distinct_versions(cp, pool):
    name = unique("bump")
    cp.create_pipeline(pipeline=two_stage_pipeline(name))

    def update(i):
        declaration = two_stage_pipeline(name)
        declaration["stages"][1]["actions"][0]["configuration"]["CustomData"] = f"update-{i}"
        return cp.update_pipeline(pipeline=declaration)["pipeline"]["version"]

    results = list(pool.map(lambda i: outcome(lambda: update(i)), range(WORKERS)))
    assert all(r[0] == "ok" for r in results), results
    versions = sorted(r[1] for r in results)
    assert versions == list(range(2, WORKERS + 2)), versions
    assert cp.get_pipeline(name=name)["pipeline"]["version"] == WORKERS + 1
    for version in range(1, WORKERS + 2):
        assert cp.get_pipeline(name=name, version=version)["pipeline"]["version"] == version
