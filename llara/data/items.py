"""What users type to name an item, resolved one way everywhere: the service, `llara recommend`
(--checkpoint and --url) and their command-line lists.

A reference is an item id (a JSON number), or text tried as, in order: an exact title (the
prompt's form "The Usual Suspects", or the file's "Usual Suspects, The"), a title with its year
("Star Wars (1977)", as the raw file writes it, or "The Usual Suspects (1995)"), then an id
written in digits. Case and surrounding spaces do not matter. Digits that are both an item's
id and another item's title ("187" in MovieLens-100K) are an error naming both readings: the
prefixes `id:` ("id:187") and `title:` ("title:187") say which is meant, and are never needed
otherwise. A title that names several items is an error listing their ids. Close matches for
an unknown title come from a word index built once, so a request costs at most a bounded
number of comparisons whatever the catalogue size.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from dataclasses import dataclass, field

from llara.common.errors import LlaraError
from llara.data.titles import normalise_title

_YEAR = re.compile(r"\s*\((\d{4})\)\s*$")
_WORD = re.compile(r"[^\W_]+")
MAX_REFERENCE_CHARS = 300
"""Longer text names no item (and is not compared with any)."""
MAX_POSTING = 2000
"""Words held by more items than this ("the", "a") do not propose close matches."""
MAX_COMPARED = 64
"""Titles compared with an unknown one, at most, per reference."""
MAX_TITLE_PARTS = 8
"""Comma-separated parts one title may span in a typed list ("Good, the Bad and the Ugly,
The (1966)" spans three)."""
ID_PREFIX, TITLE_PREFIX = "id:", "title:"
"""Say how a reference is meant where it could be read two ways: `id:187`, `title:187`."""


class ItemLookupError(LlaraError):
    """A reference that names no item, or several."""


def _key(text: str) -> str:
    return " ".join(text.split()).lower()


def _prefixed(text: str) -> tuple[str | None, str]:
    """(ID_PREFIX, TITLE_PREFIX or None, the reference after it), case aside."""
    stripped = text.lstrip()
    for prefix in (ID_PREFIX, TITLE_PREFIX):
        if stripped[:len(prefix)].lower() == prefix:
            return prefix, stripped[len(prefix):]
    return None, text


@dataclass
class ItemIndex:
    """Built once per catalogue; every lookup is a dict access, close matches bounded."""

    titles: list[str]
    exact: dict[str, list[int]] = field(default_factory=dict)
    with_year: dict[str, list[int]] = field(default_factory=dict)
    words: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def build(cls, titles: list[str], raw_titles: list[str] | None = None) -> "ItemIndex":
        index = cls([])
        for title, raw in zip(titles, raw_titles or titles):
            index.add(title, raw)
        return index

    def add(self, title: str, raw_title: str | None = None) -> int:
        """Index one more item (the next id, returned) by its title and raw title."""
        item, raw = len(self.titles), title if raw_title is None else raw_title
        self.titles.append(title)
        year = _YEAR.search(raw)
        plain = _YEAR.sub("", raw).strip()
        for name in dict.fromkeys([_key(title), _key(plain)]):
            self.exact.setdefault(name, []).append(item)
        if year:
            for name in dict.fromkeys([_key(raw), _key(f"{title} ({year[1]})"),
                                       _key(f"{normalise_title(plain)} ({year[1]})")]):
                self.with_year.setdefault(name, []).append(item)
        for word in set(_WORD.findall(title.lower())):
            self.words.setdefault(word, []).append(item)
        return item

    def __len__(self) -> int:
        return len(self.titles)

    def names_item(self, text: str) -> bool:
        """Whether `text` is an item's title, with or without its year (case and spaces
        aside): what a new item's title may not be."""
        return bool(self._found(text))

    def _found(self, text: str) -> list[int] | None:
        name = _key(text)
        return self.exact.get(name) or self.with_year.get(name)

    def resolve(self, reference: int | str) -> int:
        """The item a reference names (ItemLookupError, saying why, when none or several, or
        when digits are both an id and a title)."""
        if isinstance(reference, bool) or not isinstance(reference, (int, str)):
            # the type, not the value: a nested list's repr can be as deep as the list
            raise ItemLookupError(f"a JSON {type(reference).__name__} is neither an item id "
                                  "nor a title")
        if isinstance(reference, int):
            return self._id(reference)
        if len(reference) > MAX_REFERENCE_CHARS:
            raise ItemLookupError(f"a title of {len(reference)} characters names no item "
                                  f"(at most {MAX_REFERENCE_CHARS})")
        prefix, text = self._split_prefix([reference], 0)
        if prefix == ID_PREFIX:
            return self._id_text(text, reference)
        found = self._found(text)
        if found:
            return self._titled(text, found, prefix)
        if prefix is None and text.strip().isdecimal():  # int() reads these; "²" it cannot
            return self._id(int(text.strip()))
        close = self.suggest(text)
        raise ItemLookupError(f"unknown item title {text!r}"
                              + (f"; did you mean {close}?" if close else ""))

    def _split_prefix(self, parts: list[str], start: int) -> tuple[str | None, str]:
        """(prefix or None, the rest) of parts[start]; a title that itself begins with "id:"
        or "title:" ("ID: Invasion", alone or spanning the next parts) is read as that title,
        and only digits follow `id:` as a prefix."""
        prefix, rest = _prefixed(parts[start])
        if prefix is None or (prefix == ID_PREFIX and rest.strip().isdecimal()):
            return prefix, rest
        for stop in range(min(len(parts), start + MAX_TITLE_PARTS), start, -1):
            name = ", ".join(parts[start:stop])
            if len(name) <= MAX_REFERENCE_CHARS and self._found(name):
                return None, parts[start]
        return prefix, rest

    def _id(self, item: int) -> int:
        if not 0 <= item < len(self.titles):
            raise ItemLookupError(f"unknown item id {item}; ids run from 0 to "
                                  f"{len(self.titles) - 1}")
        return item

    def _id_text(self, text: str, reference: str) -> int:
        """`id:<digits>`: an id, whatever titles the digits also are."""
        if not text.strip().isdecimal():
            raise ItemLookupError(f"{reference!r}: {ID_PREFIX} takes an item id in digits, "
                                  f"e.g. {ID_PREFIX}42")
        return self._id(int(text.strip()))

    def _titled(self, name: str, found: list[int], prefix: str | None) -> int:
        """The item titled `name`; without a prefix, digits that are also an item's id are
        read neither way, but named as both."""
        digits = name.strip()
        if prefix is None and digits.isdecimal() and int(digits) < len(self.titles):
            item = int(digits)
            titled = ", ".join(map(str, found))
            raise ItemLookupError(
                f"{digits!r} is item id {item} (\"{self.titles[item]}\") and the title of "
                f"item{'s' if len(found) > 1 else ''} {titled}; write {ID_PREFIX}{digits} or "
                f"{TITLE_PREFIX}{digits}")
        return self._one(name, found)

    def _one(self, reference: str, found: list[int]) -> int:
        if len(found) > 1:
            raise ItemLookupError(f"{reference!r} names {len(found)} items (ids "
                                  f"{', '.join(map(str, found))}); give one of the ids")
        return found[0]

    def parse(self, text: str) -> list[int]:
        """A typed list: a JSON list of references, or references separated by commas, where
        a title may itself hold ", " ("Usual Suspects, The (1995)": the longest match wins).
        A part may carry a prefix: `id:` (then it is one id) or `title:` (a title only)."""
        text = text.strip()
        if text.startswith("["):
            try:
                values = json.loads(text)
            except json.JSONDecodeError as err:
                raise ItemLookupError(f"not a JSON list ({err.msg})") from None
            except RecursionError:  # '[[[[...' thousands deep: the parser's stack runs out
                raise ItemLookupError("not a JSON list of ids and titles (nested too "
                                      "deeply)") from None
            if not isinstance(values, list):
                raise ItemLookupError("not a JSON list")
            return [self.resolve(v) for v in values]
        parts = [p.strip() for p in text.split(",")]
        items, start = [], 0
        while start < len(parts):
            prefix, first = self._split_prefix(parts, start)
            if prefix == ID_PREFIX:
                items.append(self._id_text(first, parts[start]))
                start += 1
                continue
            for stop in range(min(len(parts), start + MAX_TITLE_PARTS), start, -1):
                name = ", ".join([first.strip(), *parts[start + 1:stop]])
                found = self._found(name) if len(name) <= MAX_REFERENCE_CHARS else None
                if found:
                    items.append(self._titled(name, found, prefix))
                    start = stop
                    break
            else:
                if parts[start]:
                    items.append(self.resolve(parts[start]))
                start += 1
        return items

    def suggest(self, text: str, n: int = 3) -> list[str]:
        """Up to n titles close to `text`: those sharing its rarer words, best first."""
        shared: Counter = Counter()
        for word in set(_WORD.findall(text.lower()[:MAX_REFERENCE_CHARS])):
            posting = self.words.get(word, ())
            if len(posting) <= MAX_POSTING:
                shared.update(posting)
        compared = [self.titles[item] for item, _ in shared.most_common(MAX_COMPARED)]
        return difflib.get_close_matches(text, compared, n=n)
