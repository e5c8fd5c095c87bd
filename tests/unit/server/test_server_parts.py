"""server/listeners.py, server/app.py and server/logs.py in isolation."""

from __future__ import annotations

import base64
import shlex
import socket
import sys
import types

import pytest
from treadle.server.app import AppLoadError, import_app
from treadle.server.listeners import BindError, open_listener, parse_host_port
from treadle.server.logs import access_atoms, escape, format_access


@pytest.mark.parametrize("bind, expected", [
    ("127.0.0.1:80", ("127.0.0.1", 80)), (":8000", ("0.0.0.0", 8000)),
    ("[::1]:0", ("::1", 0)), ("localhost:65535", ("localhost", 65535)),
])
def test_host_port_forms(bind, expected):
    assert parse_host_port(bind) == expected


@pytest.mark.parametrize("bind", ["127.0.0.1", "[::1]", "[::1]80", "h:65536", "h:+1", "h:x",
                                  "h:\u0661"])
def test_bad_host_port_forms(bind):
    with pytest.raises(BindError):
        parse_host_port(bind)


def test_listener_errors_are_one_line(tmp_path):
    not_a_socket = tmp_path / "file"
    not_a_socket.write_text("x")
    for bind in (f"unix:{not_a_socket}", "fd://notanumber", "no.such.host.invalid:80"):
        with pytest.raises(BindError) as caught:
            open_listener(bind, 16, False)
        assert "\n" not in str(caught.value)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(BindError, match="in use"):
            open_listener(f"127.0.0.1:{taken.getsockname()[1]}", 16, False)
    finally:
        taken.close()


def test_listener_reports_its_real_address():
    listener = open_listener("127.0.0.1:0", 16, False)
    try:
        assert listener.url() == f"http://127.0.0.1:{listener.sock.getsockname()[1]}"
    finally:
        listener.close()


@pytest.fixture
def fake_module(monkeypatch):
    module = types.ModuleType("treadle_fake_app")

    def application(environ, start_response):
        return []

    module.application = application
    module.app = application
    module.make = lambda greeting="hi": application
    module.nested = types.SimpleNamespace(inner=application)
    module.number = 5
    monkeypatch.setitem(sys.modules, "treadle_fake_app", module)
    return module


@pytest.mark.parametrize("spec", ["treadle_fake_app", "treadle_fake_app:app",
                                  "treadle_fake_app:make()", "treadle_fake_app:make('x')",
                                  "treadle_fake_app:make(greeting='x')",
                                  "treadle_fake_app:nested.inner"])
def test_application_forms(fake_module, spec):
    assert import_app(spec) is fake_module.application


@pytest.mark.parametrize("spec", ["treadle_fake_app:missing", "treadle_fake_app:number",
                                  "treadle_fake_app:make(x)", "treadle_fake_app:make(1, 2)",
                                  "no_such_module_xyz:app", "bad name:app", "treadle_fake_app:1+"])
def test_application_errors_are_one_line(fake_module, spec):
    with pytest.raises(AppLoadError) as caught:
        import_app(spec)
    assert "\n" not in str(caught.value)


def test_access_atoms_follow_gunicorn():
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/p?q=1", "PATH_INFO": "/p",
               "QUERY_STRING": "q=1", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "1.2.3.4",
               "HTTP_USER_AGENT": "ua", "HTTP_X_ID": "7"}
    atoms = access_atoms(environ, "404 Not Found", [(b"content-type", b"text/plain")], 0, 1.5)
    line = format_access('%(h)s "%(r)s" %(s)s %(b)s %(B)s "%(f)s" "%(a)s" %(T)s %(M)s %(D)s '
                         '%(L)s %({X-Id}i)s %({Content-Type}o)s %({PATH_INFO}e)s %(nope)s',
                         atoms)
    assert line == ('1.2.3.4 "GET /p?q=1 HTTP/1.1" 404 - 0 "-" "ua" 1 1500 1500000 1.500000 '
                    '7 text/plain /p -')
    assert "bad access_log_format" in format_access("%(h)d", atoms)


@pytest.mark.parametrize("value, logged", [
    ("Mozilla/5.0 (X11) a=b;c", "Mozilla/5.0 (X11) a=b;c"), ("", ""),
    ('evil"ua', 'evil\\"ua'), ("back\\slash", "back\\\\slash"), ('\\"', '\\\\\\"'),
    ("tab\there", "tab\\x09here"), ("a\r\nb", "a\\x0d\\x0ab"), ("\x00\x7f", "\\x00\\x7f"),
    ("caf\xc3\xa9", "caf\\xc3\\xa9"), ("\xa0", "\\xa0"), ("\u20ac", "\\xe2\\x82\\xac"),
])
def test_escape_keeps_log_fields_whole(value, logged):
    assert escape(value) == logged


def test_access_atoms_escape_what_the_request_and_app_supplied():
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": '/a"b?x="1"', "PATH_INFO": '/a\n"b',
               "QUERY_STRING": 'x="1"', "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "1.2.3.4",
               "HTTP_USER_AGENT": 'evil" 200 "forged', "HTTP_REFERER": "caf\xc3\xa9\\",
               "HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b'u"s:pw').decode(),
               "HTTP_X_ID": "a\tb", "treadle.custom": 'q"'}
    atoms = access_atoms(environ, "200 OK", [(b"X-Out", b'o"k')], 5, 0.0)
    line = format_access('%(u)s "%(r)s" %(U)s %(q)s "%(f)s" "%(a)s" %({x-id}i)s '
                         '%({x-out}o)s %({treadle.custom}e)s', atoms)
    assert line == ('u\\"s "GET /a\\"b?x=\\"1\\" HTTP/1.1" /a\\x0a\\"b x=\\"1\\" '
                    '"caf\\xc3\\xa9\\\\" "evil\\" 200 \\"forged" a\\x09b o\\"k q\\"')
    assert len(shlex.split(line)) == 9  # the fields a parser finds are the nine written


def test_access_atoms_match_names_in_any_case_as_gunicorn():
    environ = {"REMOTE_ADDR": "10.1.2.3", "wsgi.url_scheme": "https", "HTTP_X_ID": "7",
               "CONTENT_TYPE": "text/plain", "treadle.count": 3}
    atoms = access_atoms(environ, "200 OK", [(b"Content-Type", b"a"), (b"set-cookie", b"1"),
                                             (b"Set-Cookie", b"2")], 0, 0.0)
    assert format_access("%({remote_addr}e)s %({REMOTE_ADDR}e)s %({Remote_Addr}e)s "
                         "%({WSGI.URL_SCHEME}e)s %({treadle.count}e)s %({nope}e)s", atoms) == (
        "10.1.2.3 10.1.2.3 10.1.2.3 https 3 -")
    assert format_access("%({x-id}i)s %({X-ID}i)s %({content-type}i)s %({x_id}i)s", atoms) == (
        "7 7 text/plain -")
    assert format_access("%({content-type}o)s %({SET-COOKIE}o)s %({x}o)s", atoms) == "a 2 -"
