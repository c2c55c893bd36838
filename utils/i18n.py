"""The dashboard's labels in English or German (``LANGUAGE=en|de``): ``t("English text", **fmt)``.

A label is keyed by its English source text, the way gettext keys by msgid, but the German texts are a plain
Python dict (:mod:`utils.i18n_de`), so a fresh clone runs without compiling catalogs. A label that has no German
entry yet is shown in English: a new page never breaks, and ``tests/test_i18n.py`` names what is missing.

Placeholders use :meth:`str.format` syntax (``t("Order {number} closed.", number=n)``); the German text has the
same placeholders. Log messages stay English and never go through :func:`t`.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any, Literal

from utils.i18n_de import GERMAN, MESSAGE_PATTERNS, MESSAGE_SUFFIXES

Language = Literal["en", "de"]
LANGUAGES: tuple[Language, ...] = ("en", "de")
USER_TEXTS = ("TITLE", "INPUT_TEXT_TITLE", "INPUT_TEXT_PLACEHOLDER")  # the user's own texts: set, they win


@lru_cache(maxsize=16)
def _parse(raw: str | None) -> Language:
    from utils.config import ConfigError, load_settings

    if raw is None:
        return "en"
    try:
        return load_settings({"LANGUAGE": raw}).LANGUAGE
    except ConfigError:  # the dashboard shows the configuration error page (in English) instead
        return "en"


def language(environ: dict[str, str] | None = None) -> Language:
    """The LANGUAGE setting (``PREFIX`` honoured, validated by :class:`utils.config.Settings`); en when unset or
    invalid. Read from the environment on every call (cached per value), like the settings themselves."""
    env = os.environ if environ is None else environ
    prefix = env.get("PREFIX", "").strip()
    return _parse(env.get(f"{prefix}_LANGUAGE" if prefix else "LANGUAGE"))


def t(text: str, **fmt: Any) -> str:
    """``text`` in the dashboard's language (the English text itself when no translation exists), with ``fmt``
    filled into its ``{placeholders}``."""
    template = GERMAN.get(text, text) if language() == "de" else text
    return template.format(**fmt) if fmt else template


def user_text(settings: Any, name: str) -> str:
    """One of the user's own texts (TITLE, INPUT_TEXT_*): as given when set explicitly, else its default translated."""
    value = str(getattr(settings, name))
    return value if name in settings.model_fields_set else t(value)


def _known(text: str) -> str | None:
    """``text`` translated when the catalog has it, or one of its message patterns matches it; else None."""
    if text in GERMAN:
        return GERMAN[text]
    for pattern, template in MESSAGE_PATTERNS:
        found = pattern.fullmatch(text)
        if found:
            return template.format(**found.groupdict())
    return None


def error_text(err: BaseException | str) -> str:
    """A backend message shown to the operator (camera unreachable, timeout, refused token, server error, order
    number refused, disk full) in the dashboard's language where the catalog knows it, else as raised (English).

    Tried whole, then sentence by sentence (an order-number message ends with a fixed hint); a retry note at the
    end is translated on its own."""
    text = str(err)
    if language() != "de":
        return text
    for suffix, german in MESSAGE_SUFFIXES:
        if text.endswith(suffix) and text != suffix:
            return error_text(text[: -len(suffix)]) + german
    whole = _known(text)
    if whole is not None:
        return whole
    sentences = re.split(r"(?<=[.!?]) (?=[A-Z])", text)
    if len(sentences) > 1:
        return " ".join(_known(s) or s for s in sentences)
    return text


def config_error_text(err: BaseException) -> str:
    """The configuration error page's text: its first line translated, the lines naming the variables as raised."""
    head, newline, rest = str(err).partition("\n")
    return t(head) + newline + rest
