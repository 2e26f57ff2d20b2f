"""Reading floorbridge.yaml into plain data plus the line of every key, with PyYAML's node tree.

PyYAML silently keeps the last of two equal keys and has no notion of where a value came from,
so the file is composed into nodes first: the walk records each key's line (for error messages
that point at it), reports duplicate keys and keys that look like secrets, then constructs data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

KeyPath = tuple[str | int, ...]

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"

# "secretariat" (meetings.staff.*.secretariat) is a list of people, not a secret.
SECRET_NAME = re.compile(r"token|passw(?:or)?d|secret(?!ariat)|api[_-]?key|credential|private[_-]?key", re.IGNORECASE)


class ConfigLoader(yaml.SafeLoader):
    """YAML 1.1 without its traps: yes/no/on/off stay text (so `enabled: yes` is an error, not a
    silent true), 0755 and 1:30 are not octal or base-60 numbers, and nothing becomes a date."""


ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag not in (_INT, _FLOAT, _BOOL, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ConfigLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
ConfigLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), list("-+0123456789"))
ConfigLoader.add_implicit_resolver(
    _FLOAT, re.compile(r"^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]+(?:[eE][-+]?[0-9]+)?$|^[-+]?[0-9][0-9_]*\.$"),
    list("-+0123456789."),
)


def dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class Tree:
    """What a YAML file holds: its data, each key's 1-based line, and the problems the walk found."""

    data: object
    lines: dict[KeyPath, int]
    problems: list[tuple[int, str]] = field(default_factory=list)
    secret_keys: set[KeyPath] = field(default_factory=set)

    def line(self, path: KeyPath) -> int:
        """The line of `path`, or of its nearest ancestor present in the file."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1


class YamlSyntaxError(Exception):
    def __init__(self, line: int | None, what: str) -> None:
        super().__init__(what)
        self.line = line
        self.what = what


def read_tree(text: str) -> Tree:
    """Parse `text`; raises YamlSyntaxError (with a line when PyYAML knows it)."""
    loader = ConfigLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Tree({}, {(): 1})
        tree = Tree(None, {(): node.start_mark.line + 1})
        _walk(node, (), tree)
        tree.data = loader.construct_document(node)
        return tree
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = " ".join(str(x) for x in (e.context, e.problem) if x)
        raise YamlSyntaxError(mark.line + 1 if mark is not None else None, f"not valid YAML: {what}") from None
    except yaml.YAMLError as e:
        raise YamlSyntaxError(None, f"not valid YAML: {e}") from None
    finally:
        loader.dispose()


def _walk(n: Node, path: KeyPath, tree: Tree) -> None:
    if isinstance(n, MappingNode):
        for key_node, value_node in n.value:
            key = str(key_node.value) if isinstance(key_node, ScalarNode) else "?"
            here = (*path, key)
            line = key_node.start_mark.line + 1
            if here in tree.lines and key != "<<":
                first = tree.lines[here]
                tree.problems.append((line, f"{dotted(here)}: key {key!r} appears twice (first on line {first})"))
                continue
            tree.lines[here] = line
            if SECRET_NAME.search(key) and not key.lower().endswith("_env"):
                holder = "database.password_env" if path[:1] == ("database",) else "token_env"
                tree.secret_keys.add(here)
                tree.problems.append(
                    (line, f"{dotted(here)}: looks like a secret written into the file; remove it and put the "
                           f"secret in the environment variable named by {holder}")
                )
                continue
            _walk(value_node, here, tree)
    elif isinstance(n, SequenceNode):
        for index, item in enumerate(n.value):
            tree.lines[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), tree)
