"""What a user means when they answer a recovery or fallback message.

Reply buttons say it exactly (their ids are ``resume`` / ``stop``); typed text is matched against
keyword lists per locale, configurable. Anything else — a question, a photo — is for a person.
"""
from __future__ import annotations

import re
import unicodedata

RESUME, STOP, HELP, UNKNOWN = "resume", "stop", "help", "unknown"
SHORT_MESSAGE_WORDS = 6  # a keyword inside a message this short is an answer, not a story
NEGATIONS = {"no", "not", "don", "dont", "never", "nao", "nunca", "nope"}

DEFAULT_KEYWORDS = {
    "en": {RESUME: ("resume", "continue", "send it again", "send again", "again", "yes", "ok send it",
                    "start again", "restart"),
           STOP: ("stop", "unsubscribe", "cancel", "opt out", "optout"),
           HELP: ("help", "what is this", "who is this", "?", "agent", "human")},
    "es": {RESUME: ("continuar", "reanudar", "otra vez", "enviar de nuevo", "si", "sí"),
           STOP: ("parar", "baja", "cancelar", "no más", "no mas"),
           HELP: ("ayuda", "que es esto", "qué es esto", "agente")},
    "pt": {RESUME: ("continuar", "retomar", "de novo", "sim"),
           STOP: ("parar", "pare", "sair", "cancelar"),
           HELP: ("ajuda", "o que é isso", "atendente")},
}


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    if text.strip() == "?":
        return "?"
    return re.sub(r"[^\w]+", " ", text).strip()


class Intents:
    def __init__(self, keywords: dict | None = None, extra_stop_words=()):
        self.keywords = keywords or DEFAULT_KEYWORDS
        self._table: dict[str, str] = {}
        for words in self.keywords.values():
            for intent, phrases in words.items():
                for phrase in phrases:
                    self._table.setdefault(_fold(phrase), intent)
        for word in extra_stop_words:
            self._table[_fold(word)] = STOP

    def classify(self, text: str | None = None, button_id: str | None = None) -> str:
        """A reply button wins; then the whole message as a known phrase; then the known phrases
        inside a short message ("ok send it again", "please stop")."""
        if button_id in (RESUME, STOP, HELP):
            return button_id
        folded = _fold(text or "")
        if not folded:
            return UNKNOWN  # media, a location, an empty message: a person should look
        if folded in self._table:
            return self._table[folded]
        words = folded.split()
        if len(words) > SHORT_MESSAGE_WORDS:
            return UNKNOWN  # long text is a question or a story: a person should read it
        found, covered = set(), set()
        for size in range(len(words), 0, -1):
            for start in range(len(words) - size + 1):
                intent = self._table.get(" ".join(words[start:start + size]))
                if intent and not covered.intersection(range(start, start + size)):
                    found.add(intent)
                    covered.update(range(start, start + size))
        if any(w in NEGATIONS for i, w in enumerate(words) if i not in covered):
            return UNKNOWN  # "don't stop", "no, not again": a person decides, not a keyword
        decisive = found - {HELP} or found
        return decisive.pop() if len(decisive) == 1 else UNKNOWN  # "stop or resume?": a person
