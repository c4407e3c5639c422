"""YAML output for the deployment writers: PyYAML's safe dumper, keys in the order written,
multi-line strings (the config files a ConfigMap carries) as literal blocks a person can read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

__all__ = ["dump", "dump_all"]


class _Dumper(yaml.SafeDumper):
    """SafeDumper whose multi-line strings are ``|`` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(document: Mapping[str, Any]) -> str:
    return yaml.dump(dict(document), Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     width=100)


def dump_all(documents: Iterable[Mapping[str, Any]]) -> str:
    return yaml.dump_all([dict(d) for d in documents], Dumper=_Dumper, sort_keys=False,
                         default_flow_style=False, width=100)
