"""The engine's one refusal."""


class Rejected(Exception):
    """An instance the engine will not pass on; ``reason`` says why, for the uploader."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
