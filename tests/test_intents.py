import pytest

from flows.intents import HELP, RESUME, STOP, UNKNOWN, Intents


@pytest.mark.parametrize("text, button, intent", [
    (None, "resume", RESUME), ("whatever", "stop", STOP),
    ("ok send it", None, RESUME), ("Resume!", None, RESUME), ("resume now", None, RESUME),
    ("STOP", None, STOP), ("stop please", None, STOP), ("Parar", None, STOP), ("não", None, UNKNOWN),
    ("Reanudar", None, RESUME), ("¿Qué es esto?", None, HELP), ("what is this?", None, HELP),
    ("", None, UNKNOWN), (None, None, UNKNOWN),
    ("ok send it again", None, RESUME), ("yes please", None, RESUME), ("please stop", None, STOP),
    ("Stop sending me these", None, STOP), ("no más, gracias", None, STOP),
    ("don't stop", None, UNKNOWN), ("no, don't send it again", None, UNKNOWN),
    ("stop or resume?", None, UNKNOWN), ("stop, what is this?", None, STOP),
    ("I stopped by the store but they said my card is not valid anymore", None, UNKNOWN),
])
def test_classify(text, button, intent):
    assert Intents().classify(text, button) == intent


def test_configured_stop_words_count():
    assert Intents(extra_stop_words=("basta",)).classify("BASTA") == STOP
