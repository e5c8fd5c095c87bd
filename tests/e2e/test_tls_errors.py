"""TLS files that cannot be used stop the real server at start (exit 2) with one line naming
the setting, where it came from, the file and what is wrong with it, never OpenSSL's bare
"[SSL] PEM lib". Served (`python -m server APP --certfile ...`) and under --check-config."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from tests.e2e.conftest import ROOT, run_server

APP = "examples.hello:app"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("tls-files")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    paths = {name: where / f"{name}.pem" for name in
             ("cert", "key", "other_key", "junk", "encrypted_key", "ca")}
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    trustme.CA().issue_cert("localhost").private_key_pem.write_to_path(str(paths["other_key"]))
    ca.cert_pem.write_to_path(str(paths["ca"]))
    paths["junk"].write_text("not a certificate\n")
    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), None)
    paths["encrypted_key"].write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    paths["missing"] = where / "missing.pem"
    return paths


def start(*flags: str) -> subprocess.CompletedProcess[str]:
    return run_server(APP, "--bind", "127.0.0.1:0", *flags)


def the_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("treadle: error: ")]
    assert len(errors) == 1 and "PEM lib" not in result.stderr, result.stderr
    return errors[0].removeprefix("treadle: error: ")


def test_missing_certfile_and_keyfile(files: dict[str, Path]) -> None:
    missing = files["missing"]
    assert the_error(start("--certfile", str(missing))) == (
        f"certfile (command line --certfile): no such file: {missing}")
    assert the_error(start("--certfile", str(files["cert"]), "--keyfile", str(missing))) == (
        f"keyfile (command line --keyfile): no such file: {missing}")


def test_certificate_without_its_key(files: dict[str, Path]) -> None:
    assert the_error(start("--certfile", str(files["cert"]))) == (
        f"certfile (command line --certfile): {files['cert']} has no private key; set keyfile")


def test_key_that_does_not_match_the_certificate(files: dict[str, Path]) -> None:
    result = start("--certfile", str(files["cert"]), "--keyfile", str(files["other_key"]))
    assert the_error(result) == (
        f"keyfile (command line --keyfile): {files['other_key']} holds a private key that does "
        f"not match the certificate in certfile {files['cert']}")


def test_files_that_are_not_pem_or_hold_the_wrong_thing(files: dict[str, Path]) -> None:
    junk = files["junk"]
    assert the_error(start("--certfile", str(junk))) == (
        f"certfile (command line --certfile): {junk} is not a PEM file (no -----BEGIN line; "
        "a DER file converts with `openssl x509 -inform der`)")
    assert the_error(start("--certfile", str(files["key"]))) == (
        f"certfile (command line --certfile): {files['key']} holds no certificate "
        "(-----BEGIN CERTIFICATE-----)")
    assert the_error(start("--certfile", str(files["cert"]), "--keyfile", str(files["cert"]))) \
        == f"keyfile (command line --keyfile): {files['cert']} holds no private key"


def test_encrypted_key_needs_its_password(files: dict[str, Path]) -> None:
    pair = ("--certfile", str(files["cert"]), "--keyfile", str(files["encrypted_key"]))
    assert the_error(start(*pair)) == (
        f"keyfile (command line --keyfile): {files['encrypted_key']} holds an encrypted private "
        "key; set keyfile_password")
    wrong = the_error(run_server(APP, "--bind", "127.0.0.1:0", *pair,
                                 env={"TREADLE_KEYFILE_PASSWORD": "wrong"}))
    assert wrong == (
        "keyfile_password (env TREADLE_KEYFILE_PASSWORD): cannot decrypt the private key in "
        f"keyfile {files['encrypted_key']}: wrong password")


def test_bad_ca_certs_and_ciphers(files: dict[str, Path]) -> None:
    pair = ("--certfile", str(files["cert"]), "--keyfile", str(files["key"]))
    assert the_error(start(*pair, "--ca-certs", str(files["junk"]))) == (
        f"ca_certs (command line --ca-certs): {files['junk']} is not a PEM file (no -----BEGIN "
        "line; a DER file converts with `openssl x509 -inform der`)")
    assert the_error(start(*pair, "--ca-certs", str(files["key"]))) == (
        f"ca_certs (command line --ca-certs): {files['key']} holds no certificate")
    assert the_error(start(*pair, "--ciphers", "NO-SUCH-CIPHER")) == (
        "ciphers (command line --ciphers): OpenSSL selects no cipher from 'NO-SUCH-CIPHER' "
        "(see `openssl ciphers`)")


def test_unreadable_key(files: dict[str, Path]) -> None:
    with tempfile.TemporaryDirectory() as where:  # outside pytest's private (0700) tmp dirs
        os.chmod(where, 0o755)
        cert, key = Path(where) / "cert.pem", Path(where) / "private.pem"
        cert.write_bytes(files["cert"].read_bytes())
        key.write_bytes(files["key"].read_bytes())
        cert.chmod(0o644)
        key.chmod(0o600)
        if os.geteuid() == 0:  # root reads anything: serve as nobody, who cannot read it
            # nobody imports the application after the switch: from here, not from a
            # checkout that may be private (a clone in a 0700 `mktemp -d`)
            (Path(where) / "tls_hello.py").write_text((ROOT / "examples" / "hello.py").read_text())
            (Path(where) / "tls_hello.py").chmod(0o644)
            result = run_server("tls_hello:app", "--bind", "127.0.0.1:0", "--chdir", where,
                                "--certfile", str(cert), "--keyfile", str(key),
                                "--user", "nobody")
        else:
            key.chmod(0)
            result = start("--certfile", str(cert), "--keyfile", str(key))
    assert the_error(result) == (
        f"keyfile (command line --keyfile): cannot read {key}: permission denied for this user")


def test_check_config_says_the_same(files: dict[str, Path]) -> None:
    result = run_server("--check-config", "--certfile", str(files["cert"]))
    assert the_error(result) == (
        f"certfile (command line --certfile): {files['cert']} has no private key; set keyfile")
