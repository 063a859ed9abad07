import pytest


@pytest.fixture(autouse=True)
def no_canvas_notification(monkeypatch: pytest.MonkeyPatch) -> None:
    """Overrides the suite's fixture: these tests resolve the settings from an environment
    without ALLYE_NOTIFY_CANVAS (their one sending test turns notification off in the
    settings file)."""
    monkeypatch.delenv("ALLYE_NOTIFY_CANVAS", raising=False)
