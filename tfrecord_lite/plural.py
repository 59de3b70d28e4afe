"""Counted phrases in messages: ``1 item``, ``2 items``, ``1 box dropped``, ``1 object is
listed``. Every message that counts something says it through ``count``."""

from __future__ import annotations

# Words that end in "s" without being plurals.
_NOT_PLURAL = frozenset({"as", "is", "was", "has", "does", "its", "this", "thus", "always",
                         "whereas", "yes", "alias", "status", "bias", "less"})
# What a verb after the counted noun becomes for one.
_SINGULAR_VERBS = {"are": "is", "were": "was", "have": "has", "do": "does", "differ":
                   "differs"}


def singular(word: str) -> str:
    """The singular of a plural noun (``boxes`` -> ``box``, ``classes`` -> ``class``,
    ``entries`` -> ``entry``); any other word as it is."""
    if word.lower() in _NOT_PLURAL or not word.endswith("s") or word.endswith(("ss", "us")):
        return word
    if word.endswith(("sses", "xes", "ches", "shes", "zes")):
        return word[:-2]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    return word[:-1]


def count(n: int, phrase: str) -> str:
    """``n`` and ``phrase``, written in the plural (``"items"``, ``"boxes dropped"``,
    ``"background images"``, ``"objects are listed"``), made singular when ``n`` is 1:
    its first plural noun, and the verb that follows it.

    >>> count(2, "items"), count(1, "boxes dropped"), count(1, "objects are listed")
    ('2 items', '1 box dropped', '1 object is listed')
    """
    if n != 1:
        return f"{n} {phrase}"
    words = phrase.split(" ")
    for i, word in enumerate(words):
        one = singular(word)
        if one == word:
            continue
        words[i] = one
        for j in range(i + 1, len(words)):
            if words[j] in _SINGULAR_VERBS:
                words[j] = _SINGULAR_VERBS[words[j]]
                break
        break
    return "1 " + " ".join(words)
