"""CITATION.cff is valid Citation File Format 1.2.0, and its version is the package's.

cffconvert (the issue's tool; 2.0.0, its last release, from 2021) pins jsonschema < 4. Beside
the ``notebooks`` extra (jupyter -> jupyter_events needs jsonschema >= 4.18) pip backtracks to
cffconvert 1.3.3, which predates CFF 1.2.0, with click 6.7 and ruamel.yaml 0.15; installed
alone it downgrades the jsonschema that nbformat validates notebooks with. So this validates
against the CFF 1.2.0 JSON schema that cffconvert 2.0.0 itself ships, with jsonschema, as
``cffconvert --validate`` does: ``tests/data/cff-1.2.0.schema.json`` is a copy of cffconvert
2.0.0's ``schemas/1.2.0/schema.json`` (the citation-file-format project's schema).
"""

import datetime
import json
import pathlib

import jsonschema
import pytest
import yaml

import jaxae

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "tests" / "data" / "cff-1.2.0.schema.json").read_text("utf-8"))


def _citation() -> dict:
    data = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    # YAML reads an unquoted date as a date; CFF (and its schema) want the ISO string.
    return {k: v.isoformat() if isinstance(v, datetime.date) else v for k, v in data.items()}


def test_citation_cff_is_valid_cff_1_2_0():
    citation = _citation()
    assert citation["cff-version"] == "1.2.0"
    jsonschema.Draft7Validator(SCHEMA).validate(citation)


def test_citation_version_is_the_package_version():
    assert str(_citation()["version"]) == jaxae.__version__


def test_the_schema_rejects_an_invalid_citation():
    citation = {**_citation(), "authors": "not a list"}
    with pytest.raises(jsonschema.ValidationError, match="is not of type 'array'"):
        jsonschema.Draft7Validator(SCHEMA).validate(citation)
