"""Carrier keywords (CTIA): a reply that is exactly one of these words is a command.

Opt-out: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT (and Spanish PARAR, ALTO, BAJA,
DETENER, CANCELAR, which carriers in the US also see from Spanish speakers). Opt-in: START,
UNSTOP, YES. Help: HELP, INFO, AYUDA. Case, surrounding spaces, punctuation and emoji do not
matter; any other word in the message makes it free text (handled by the classifier, which
also recognises free-text revocations such as "please stop texting me").
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache

from services.messenger.domain.linter import fold


class Keyword(StrEnum):
    opt_out = "opt_out"
    opt_out_all = "opt_out_all"  # STOPALL: every channel
    opt_in = "opt_in"
    help = "help"


OPT_OUT_WORDS = frozenset(
    {"STOP", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "PARAR", "ALTO", "BAJA", "DETENER", "CANCELAR"}
)
OPT_OUT_ALL_WORDS = frozenset({"STOPALL"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO", "AYUDA"})

_NOT_WORD = re.compile(r"[^A-Z0-9]+")


@lru_cache(maxsize=4096)
def keyword(body: str) -> Keyword | None:
    """The keyword ``body`` is, if it is exactly one (ignoring case, punctuation, emoji)."""
    token = _NOT_WORD.sub("", fold(body).upper())
    if not token or len(token) > 12:
        return None
    if token in OPT_OUT_ALL_WORDS:
        return Keyword.opt_out_all
    if token in OPT_OUT_WORDS:
        return Keyword.opt_out
    if token in OPT_IN_WORDS:
        return Keyword.opt_in
    if token in HELP_WORDS:
        return Keyword.help
    return None


def is_single_word(body: str) -> bool:
    return len(re.findall(r"[A-Za-zÀ-ÿ]+", body)) <= 1
