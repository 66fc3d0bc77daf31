"""The seven SFEW expressions and matching folder names to them."""

from __future__ import annotations

EXPRESSIONS = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")

_ALIASES = {
    "anger": "Angry",
    "angry": "Angry",
    "disgust": "Disgust",
    "disgusted": "Disgust",
    "fear": "Fear",
    "fearful": "Fear",
    "happy": "Happy",
    "happiness": "Happy",
    "neutral": "Neutral",
    "sad": "Sad",
    "sadness": "Sad",
    "surprise": "Surprise",
    "surprised": "Surprise",
}


def match_expression(name: str) -> str | None:
    """The canonical expression a folder name stands for (case-insensitive), or None."""
    return _ALIASES.get(name.strip().lower())
