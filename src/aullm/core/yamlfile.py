"""Reading YAML that a person wrote (configs, `--set` values) with two refusals PyYAML does not make by itself.

- A key written twice in one mapping (`train:` twice): PyYAML keeps the later one without a word, so half of a
  config could be ignored. Refused, naming the key and both lines.
- An alias bomb (`a: &a [x, x]`, `b: &b [*a, *a]`, … nested ten times): PyYAML builds it cheaply by sharing
  objects, but everything after (validation, copying, writing config.yaml) walks the expanded tree, which costs
  minutes and gigabytes. The node graph is measured, with its aliases expanded, before any Python object is
  built; more than `MAX_NODES` values is refused. Anchors and merge keys (`<<: *defaults`) of ordinary size work.
"""

from __future__ import annotations

from typing import Any

import yaml

from aullm.core.errors import ConfigError

#: Expanded values a config may hold: a full resolved config has about 100, a long sweep list a few thousand.
MAX_NODES = 100_000


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping."""

    source = "YAML"

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{self.source}: key {key!r} is written twice in one mapping (lines {seen[key]} and {line}); "
                    "YAML would silently keep the later one — keep one of them"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: yaml.Node) -> int:
    """How many values `root` stands for once every alias is expanded (counted, never built)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value
        if children_done:
            sizes[id(node)] = min(MAX_NODES + 1, 1 + sum(sizes.get(id(c), 0) for c in children))
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def load_yaml(text: str, source: str = "YAML") -> Any:
    """`yaml.safe_load(text)` with duplicate keys and alias bombs refused (ConfigError naming `source`).

    Other YAML errors propagate as `yaml.YAMLError`, for the caller to report with its own context."""
    loader = _StrictLoader(text)
    loader.source = source
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node)
        if size > MAX_NODES:
            raise ConfigError(
                f"{source} expands to more than {MAX_NODES:,} values through YAML anchors and aliases (&/*); "
                "refusing to read it (an alias bomb?)"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


__all__ = ["MAX_NODES", "load_yaml"]
