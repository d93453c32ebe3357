#!/usr/bin/env python3
"""Check that schema/runbook.schema.json accepts every runbook and rejects a broken one,
the way an editor's YAML language server would use it."""
import copy
import glob
import json
import sys

import jsonschema
import yaml

schema = json.load(open("schema/runbook.schema.json"))
validator = jsonschema.Draft7Validator(schema)
bad = 0
files = [f for f in sorted(glob.glob("runbooks/*.yaml")) if not f.endswith("policy.yaml")]
for f in files:
    doc = yaml.safe_load(open(f))
    for err in validator.iter_errors(doc):
        print(f"{f}: {err.message}")
        bad += 1
    broken = copy.deepcopy(doc)
    if broken.get("checks"):
        broken["checks"][0].setdefault("with", {})["no_such_param"] = 1
        if not list(validator.iter_errors(broken)):
            print(f"{f}: schema accepted an unknown probe parameter")
            bad += 1
print(f"schema: {len(files)} runbooks checked, {bad} problem(s)")
sys.exit(1 if bad else 0)
