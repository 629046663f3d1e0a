"""surgtwin: surgical planning on a patient's digital twin."""

__version__ = "0.1.0"
