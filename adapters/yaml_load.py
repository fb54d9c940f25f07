"""YAML reading for every configuration file: PyYAML's safe loader, except that a value which
looks like a date but is not one (``2024-13-01``, ``2023-02-30``) is a YAML error at its line
instead of a bare ``ValueError`` from the date constructor (a traceback in every command)."""

from __future__ import annotations

from typing import Any

import yaml


class _SafeLoader(yaml.SafeLoader):
    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:  # type: ignore[override]
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid date {node.value!r}: {exc}", node.start_mark
            ) from None


_SafeLoader.add_constructor("tag:yaml.org,2002:timestamp", _SafeLoader.construct_yaml_timestamp)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` whose every failure is a :class:`yaml.YAMLError` with a line mark."""
    return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 - a SafeLoader subclass
