"""The edge's settings: proxy_protocol with gunicorn's spellings (a bare --proxy-protocol
means auto), proxy_allow_ips, http2_cleartext_trusted_only."""

from __future__ import annotations

from pathlib import Path

import pytest
from treadle.config import ConfigError, load


@pytest.mark.parametrize(("argv", "mode"), [
    ([], "off"),
    (["--proxy-protocol"], "auto"),  # gunicorn's const
    (["--proxy-protocol", "v1"], "v1"),
    (["--proxy-protocol=V2"], "v2"),
    (["--proxy-protocol", "true"], "auto"),
    (["--proxy-protocol", "none"], "off"),
])
def test_proxy_protocol_modes(tmp_path: Path, argv: list[str], mode: str) -> None:
    # APP first: a bare --proxy-protocol would take it as its mode (as gunicorn's does)
    assert load(["mod:app", *argv], {}, tmp_path).proxy_protocol == mode


def test_proxy_protocol_from_a_file_and_the_environment(tmp_path: Path) -> None:
    (tmp_path / "treadle.toml").write_text("proxy_protocol = true\n"
                                           'proxy_allow_ips = ["10.0.0.0/8", "*"]\n')
    cfg = load(["mod:app"], {}, tmp_path)
    assert (cfg.proxy_protocol, cfg.proxy_allow_ips) == ("auto", ("10.0.0.0/8", "*"))
    cfg = load(["mod:app"], {"TREADLE_PROXY_PROTOCOL": "v2",
                             "TREADLE_PROXY_ALLOW_IPS": "192.168.0.1, ::1"}, tmp_path)
    assert (cfg.proxy_protocol, cfg.proxy_allow_ips) == ("v2", ("192.168.0.1", "::1"))


def test_bad_values_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="off, v1, v2 or auto"):
        load(["--proxy-protocol", "v3", "mod:app"], {}, tmp_path)
    with pytest.raises(ConfigError, match="proxy-allow-from"):
        load(["--proxy-allow-from", "10.0.0.1/8", "mod:app"], {}, tmp_path)


def test_defaults_match_gunicorn(tmp_path: Path) -> None:
    cfg = load(["mod:app"], {}, tmp_path)
    assert cfg.proxy_allow_ips == ("127.0.0.1", "::1")
    assert cfg.http2_cleartext_trusted_only is True
    assert load(["--no-http2-cleartext-trusted-only", "mod:app"], {},
                tmp_path).http2_cleartext_trusted_only is False
