"""YAML as nntrain reads it, the same for a config and for a run folder's files: PyYAML's
safe loader (no tag ever runs code) that also reads 1e-3 as a number and refuses what no
config needs. config.py reads configs with it, runs.py a run folder's config.yaml, and the
view a compare folder's sweep.yaml, so that report, plot and view read a file as resume and
predict do."""

from __future__ import annotations

import re
import typing
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

from .registry import describe


class SafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader (no Python tags) that also reads 1e-3 as a number, and refuses what no
    config needs: duplicate keys, nesting deeper than MAX_DEPTH, aliases expanding to more
    than MAX_VALUES values (a 400-byte "billion laughs" file is gigabytes once expanded).

    PyYAML follows YAML 1.1, where a float needs a dot (1.0e-3) and 1e-3 is a
    string; every user writing lr: 1e-3 means a number, as YAML 1.2 says.
    """

    MAX_DEPTH = 100
    MAX_VALUES = 100_000
    depth = 0  # of the node being composed

    def compose_node(self, parent, index):
        # PyYAML composes recursively: 5000 levels would be a RecursionError, not a message
        depth = self.depth
        if depth >= self.MAX_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {self.MAX_DEPTH} levels",
                                self.peek_event().start_mark)
        self.depth = depth + 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth = depth

    def compose_document(self):
        node = super().compose_document()
        if expanded_size(node, {}) > self.MAX_VALUES:
            raise ComposerError(None, None, f"its aliases (*name) expand to more than "
                                f"{self.MAX_VALUES} values", node.start_mark)
        return node

    def construct_yaml_int(self, node):
        try:
            return super().construct_yaml_int(node)
        except ValueError:  # Python refuses to parse integers of over 4300 digits
            raise ConstructorError(None, None, "an integer with too many digits",
                                   node.start_mark) from None

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<: *base' then 'lr: 0.1' overrides on purpose
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, typing.Hashable):
                continue  # super() reports an unhashable key
            if key in seen:
                raise ConstructorError(None, None, f"duplicate key {describe(key)}: a key can "
                                       "appear once in a mapping", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def expanded_size(node: yaml.Node, sizes: dict) -> int:
    """Values in ``node`` with every alias expanded: an aliased node counts once per use.

    ``sizes`` remembers each node's size, so the count itself never expands anything.
    """
    if id(node) in sizes:
        return sizes[id(node)]
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    else:
        children = []
    sizes[id(node)] = 1 + sum(expanded_size(child, sizes) for child in children)
    return sizes[id(node)]


SafeLoader.add_constructor("tag:yaml.org,2002:int", SafeLoader.construct_yaml_int)
SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def safe_load(text: str) -> Any:
    return yaml.load(text, Loader=SafeLoader)  # noqa: S506 (a SafeLoader subclass)
