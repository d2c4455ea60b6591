"""Kubernetes label selectors: the one parser Wharf (and its test harness) uses.

The syntax of ``kubectl get -l`` and the API's ``labelSelector``: comma-separated
requirements, all of which must hold::

    key             the label exists
    !key            the label does not exist
    key=value       equal (also ``key==value``); ``key=`` matches an empty value
    key!=value      not equal, or the label is absent
    key in (a,b)    one of the values
    key notin (a,b) none of the values, or the label is absent

Keys are qualified names (an optional DNS-subdomain prefix and ``/``, then at most 63
letters, digits, ``-``, ``_`` and ``.``); values are at most 63 of those, or empty.
Framework-free: :func:`parse` raises :class:`SelectorError` with a message a user can act
on; the model turns it into a validation error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_LENGTH = 1000
# One token: an operator, punctuation, or a run of anything else (a key or a value).
TOKEN = re.compile(r"\s*(==|!=|=|!|\(|\)|,|[^\s=!(),]+)")
KEYWORDS = {"in", "notin"}
PUNCTUATION = {"==", "!=", "=", "!", "(", ")", ","}


class SelectorError(ValueError):
    """A label selector that does not parse; ``str(e)`` says what is wrong and where."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "exists", "!exists", "=", "!=", "in", "notin"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!exists":
            return not present
        value = labels.get(self.key)
        if self.operator in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values  # "!=" and "notin"

    def __str__(self) -> str:
        if self.operator == "exists":
            return self.key
        if self.operator == "!exists":
            return f"!{self.key}"
        if self.operator in ("=", "!="):
            return f"{self.key}{self.operator}{self.values[0]}"
        return f"{self.key} {self.operator} ({','.join(self.values)})"


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with ``labels`` is selected (the empty selector selects all)."""
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __bool__(self) -> bool:
        return bool(self.requirements)


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None:  # only trailing whitespace could fail, and it was stripped
            raise SelectorError(f"Unexpected character at position {position + 1}.")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def validate_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not PREFIX.match(prefix)):
        raise SelectorError(
            f"“{key}” is not a label key: its prefix before / must be a DNS subdomain "
            "(lowercase letters, digits, - and .), at most 253 characters."
        )
    if not NAME.match(name):
        raise SelectorError(
            f"“{key}” is not a label key: the name must be 1–63 letters, digits, -, _ or ., "
            "starting and ending with a letter or digit."
        )


def validate_value(value: str, key: str) -> None:
    if value and not NAME.match(value):
        raise SelectorError(
            f"“{value}” is not a label value (for {key}): at most 63 letters, digits, -, _ "
            "or ., starting and ending with a letter or digit, or empty."
        )


@functools.lru_cache(maxsize=256)
def parse(text: str) -> Selector:
    """The selector ``text`` (blank: the empty selector, which selects everything)."""
    if len(text) > MAX_LENGTH:
        raise SelectorError(f"A label selector is at most {MAX_LENGTH} characters.")
    tokens = _tokens(text)
    requirements: list[Requirement] = []
    i = 0

    def peek(offset: int = 0) -> str | None:
        return tokens[i + offset] if i + offset < len(tokens) else None

    while i < len(tokens):
        token = tokens[i]
        if token == "!":
            key = peek(1)
            if key is None or key in PUNCTUATION:
                raise SelectorError("“!” must be followed by a label key, as in !deprecated.")
            validate_key(key)
            requirements.append(Requirement(key, "!exists"))
            i += 2
        elif token in ("=", "==", "!=", "(", ")", ","):
            raise SelectorError(
                f"Expected a label key where “{token}” is (requirement {len(requirements) + 1})."
            )
        else:
            key = token
            if "<" in key or ">" in key:
                raise SelectorError("Wharf's selectors do not compare numbers (< and >).")
            validate_key(key)
            op = peek(1)
            if op is None or op == ",":
                requirements.append(Requirement(key, "exists"))
                i += 1
            elif op in ("=", "==", "!="):
                value = peek(2)
                if value is None or value == ",":  # "key=" selects an empty value
                    value, i = "", i + 2
                elif value in PUNCTUATION:
                    raise SelectorError(f"Expected a value after “{key}{op}”, not “{value}”.")
                else:
                    i += 3
                validate_value(value, key)
                requirements.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
            elif op in KEYWORDS:
                if peek(2) != "(":
                    raise SelectorError(
                        f"“{key} {op}” needs its values in parentheses, as in {key} {op} (a,b)."
                    )
                i += 3
                values: list[str] = []
                expect_value = True
                while True:
                    item = peek()
                    if item is None:
                        raise SelectorError(f"The values of “{key} {op}” miss their closing “)”.")
                    i += 1
                    if item == ")":
                        if expect_value and values:  # "(a,)": an empty value at the end
                            values.append("")
                        break
                    if item == ",":
                        if expect_value:  # "(a,,b)" or "(,a)": an empty value
                            values.append("")
                        expect_value = True
                        continue
                    if item in ("=", "==", "!=", "!", "("):
                        raise SelectorError(f"Unexpected “{item}” in the values of “{key} {op}”.")
                    if not expect_value:
                        raise SelectorError(f"Separate the values of “{key} {op}” with commas.")
                    validate_value(item, key)
                    values.append(item)
                    expect_value = False
                if not values:
                    raise SelectorError(f"“{key} {op} ()” needs at least one value.")
                requirements.append(Requirement(key, op, tuple(dict.fromkeys(values))))
            else:
                raise SelectorError(
                    f"After the key “{key}” expected =, ==, !=, in, notin or a comma, not “{op}”."
                )
        if i < len(tokens):
            if tokens[i] != ",":
                raise SelectorError(
                    f"Separate requirements with commas: unexpected “{tokens[i]}” after "
                    f"requirement {len(requirements)}."
                )
            i += 1
            if i == len(tokens):
                raise SelectorError("The selector ends with a comma: remove it.")
    return Selector(tuple(requirements))


def matches(text: str, labels: Mapping[str, str] | None) -> bool:
    """Whether ``labels`` satisfy the selector ``text`` (raises SelectorError if malformed)."""
    return parse(text).matches(labels)
