#!/usr/bin/env python3
"""Writes the constraint facts of an AWS service model (shapes, members, required members,
lengths, ranges, patterns, enums) as compact JSON, without documentation text.

Usage: tools/extract_model.py SERVICE VERSION > crates/sluice-aws/models/SERVICE.json
Needs botocore installed (pip install botocore).
"""
import gzip
import json
import os
import sys

import botocore

KEEP = ("type", "min", "max", "pattern", "enum", "required")


def load(service, version):
    base = os.path.join(os.path.dirname(botocore.__file__), "data", service, version)
    path = os.path.join(base, "service-2.json")
    if os.path.exists(path):
        return json.load(open(path))
    return json.load(gzip.open(path + ".gz"))


def compact_shape(shape):
    out = {k: shape[k] for k in KEEP if k in shape}
    if shape["type"] == "structure":
        out["members"] = {name: m["shape"] for name, m in shape.get("members", {}).items()}
        if shape.get("exception"):
            out["exception"] = True
    elif shape["type"] == "list":
        out["member"] = shape["member"]["shape"]
    elif shape["type"] == "map":
        out["key"] = shape["key"]["shape"]
        out["value"] = shape["value"]["shape"]
    return out


def main():
    service, version = sys.argv[1], sys.argv[2]
    model = load(service, version)
    operations = {
        name: {"input": op.get("input", {}).get("shape"), "output": op.get("output", {}).get("shape")}
        for name, op in model["operations"].items()
    }
    shapes = {name: compact_shape(shape) for name, shape in model["shapes"].items()}
    meta = {k: model["metadata"][k] for k in ("apiVersion", "targetPrefix", "jsonVersion") if k in model["metadata"]}
    json.dump({"metadata": meta, "operations": operations, "shapes": shapes}, sys.stdout, sort_keys=True, separators=(",", ":"))
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
