"""The generator's exceptions: one root, so callers can catch everything of ours at once."""


class DatagenError(Exception):
    """Root of every error the generator raises on purpose."""


class SettingsError(DatagenError):
    """A setting has a value the generator cannot run with.

    Deliberately not a ValueError: raised inside a pydantic validator it must reach the caller as is.
    """

    def __init__(self, variable: str, value: str, accepts: str) -> None:
        self.variable = variable
        self.value = value
        self.accepts = accepts
        super().__init__(f"invalid setting {variable}={value!r}: expected {accepts}")
