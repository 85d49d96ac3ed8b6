"""A cold inference component: "no capacity" from the first call for N seconds, then answers."""

from __future__ import annotations

import pytest

from jumpstream.emulator.__main__ import parse_args, settings_from


def test_cold_start_is_read_with_a_component() -> None:
    args = parse_args(["--inference-component", "ic", "--cold-start", "2.5"])
    settings = settings_from(args)
    assert (settings.inference_component, settings.cold_start) == ("ic", 2.5)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--cold-start", "2"], "--cold-start needs --inference-component"),
        (["--inference-component", "ic", "--cold-start", "-1"], "0 or more seconds"),
    ],
)
def test_a_cold_start_that_cannot_be_is_refused(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(argv)
    assert caught.value.code == 2
    assert says in capsys.readouterr().err
