"""The TLS and HTTP/2 settings: rules between them, paths, secrecy (what is wrong with the
files themselves: tests/e2e/test_tls_errors.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme
from treadle.config import ConfigError, check_paths, load, to_toml


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def write_pair(ca: trustme.CA, where: Path) -> tuple[Path, Path]:
    cert = ca.issue_cert("localhost")
    cert_path, key_path = where / "cert.pem", where / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    return cert_path, key_path


def test_defaults_serve_h2_only_where_tls_or_h2c_allows(tmp_path: Path) -> None:
    cfg = load([], {}, tmp_path)
    assert cfg.certfile is None
    assert (cfg.http_protocols, cfg.http2_cleartext, cfg.cert_reqs) == (("h2", "h1"), "off",
                                                                        "none")
    assert (cfg.ssl_min_version, cfg.handshake_timeout) == ("1.2", 10.0)
    assert (cfg.http2_max_concurrent_streams, cfg.http2_initial_window_size,
            cfg.http2_max_frame_size, cfg.http2_max_header_list_size) == (100, 65535, 16384,
                                                                         65536)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--keyfile", "k.pem"], "keyfile (command line --keyfile): a key without certfile"),
        (["--ca-certs", "ca.pem"], "ca_certs (command line --ca-certs): client certificates "
                                   "need TLS"),
        (["--cert-reqs", "2"], "cert_reqs (command line --cert-reqs): client certificates "
                               "need TLS"),
        (["--certfile", "c.pem", "--cert-reqs", "required"],
         "cert_reqs (command line --cert-reqs): required client certificates need ca_certs"),
        (["--keyfile-password", "x"], "keyfile_password (command line --keyfile-password)"),
        (["--http2-cleartext", "both", "--http-protocols", "h1"],
         "http2_cleartext (command line --http2-cleartext): h2c needs h2 in http_protocols"),
        (["--http2-cleartext", "upgrade", "--certfile", "c.pem"],
         "http2_cleartext (command line --http2-cleartext): with certfile every listener"),
        (["--http-protocols", "h2,h2"], "http_protocols (command line --http-protocols): a "
                                        "protocol is listed twice"),
    ],
)
def test_settings_that_make_no_sense_together_are_refused(
    tmp_path: Path, argv: list[str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(argv, {}, tmp_path)
    assert str(caught.value).startswith(message)


def test_tls_paths_are_resolved_and_checked(tmp_path: Path, ca: trustme.CA) -> None:
    cert, key = write_pair(ca, tmp_path)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    cfg = load(["--certfile", "cert.pem", "--keyfile", "key.pem", "--ca-certs", "ca.pem",
                "--cert-reqs", "required"], {}, tmp_path)
    assert (cfg.certfile, cfg.keyfile) == (str(cert), str(key))
    assert check_paths(cfg) == []


def test_print_config_never_shows_the_key_password(tmp_path: Path) -> None:
    cfg = load(["--certfile", "c.pem"], {"TREADLE_KEYFILE_PASSWORD": "hunter2"}, tmp_path)
    text = to_toml(cfg)
    assert "hunter2" not in text
    assert "# keyfile_password is set (not shown)  # env TREADLE_KEYFILE_PASSWORD" in text
    assert 'http_protocols = ["h2", "h1"]  # default' in text
