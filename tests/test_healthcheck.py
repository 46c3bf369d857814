"""``fedgate healthcheck``: it probes the port the configuration names, against real servers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.healthcheck import main, probe_url
from tests.conftest import free_port
from tests.serving import serve, stop, write_config

BIN = Path(sys.executable).parent


def healthcheck(*args: str) -> subprocess.CompletedProcess[str]:
    """The probe as images run it (`fedgate healthcheck` minus the plugin loading), for real."""
    return subprocess.run(
        [sys.executable, "-m", "gateway.healthcheck", *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """Two live gateways: one ready (memory store), one alive whose Redis store is unreachable."""
    base = tmp_path_factory.mktemp("healthcheck")
    ready_port, unready_port, closed = free_port(), free_port(), free_port()
    ready = write_config(base / "ready.yaml", ready_port)
    unready = write_config(
        base / "unready.yaml", unready_port, store=f'{{backend: redis, url: "redis://127.0.0.1:{closed}/0"}}'
    )
    started = []
    try:
        for config, port in ((ready, ready_port), (unready, unready_port)):
            started.append(serve([str(BIN / "fedgate"), "serve", "-c", str(config)], config, port))
        yield ready, unready
    finally:
        for process in started:
            stop(process)


def test_healthy_on_the_configured_port(servers: tuple[Path, Path]) -> None:
    ready, _ = servers
    for args in ([], ["--ready"]):
        result = healthcheck("-c", str(ready), *args)
        assert (result.returncode, result.stderr) == (0, "")


def test_the_fedgate_command_has_it(servers: tuple[Path, Path]) -> None:
    ready, _ = servers
    result = subprocess.run(
        [str(BIN / "fedgate"), "healthcheck", "-c", str(ready), "--ready"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_alive_but_not_ready_while_the_store_is_away(servers: tuple[Path, Path]) -> None:
    _, unready = servers
    assert healthcheck("-c", str(unready)).returncode == 0
    result = healthcheck("-c", str(unready), "--ready")
    assert result.returncode == 1
    assert result.stderr.strip().endswith("/readyz: answered 503")


def test_config_from_the_environment_and_no_proxy(servers: tuple[Path, Path]) -> None:
    """$FEDGATE_CONFIG names the config; a proxy set for the identity providers is not used."""
    ready, _ = servers
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "gateway.healthcheck"],
        env={
            "FEDGATE_CONFIG": str(ready),
            "PATH": "/usr/bin:/bin",
            "HTTP_PROXY": dead_proxy,
            "http_proxy": dead_proxy,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_unhealthy_when_nothing_listens(tmp_path: Path) -> None:
    port = free_port()
    result = healthcheck("-c", str(write_config(tmp_path / "f.yaml", port)), "--timeout", "2")
    assert result.returncode == 1
    assert f"http://127.0.0.1:{port}/healthz: no answer" in result.stderr
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "no configuration: give -c FILE or set $FEDGATE_CONFIG"),
        ("listen: {port: 0}\n", "listen.port is 0"),
        ("listen: {port: http}\n", "listen.port:"),
        ("listen: [8080\n", "not valid YAML"),
    ],
)
def test_unusable_configuration_is_one_line_and_unhealthy(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str | None,
    message: str,
) -> None:
    """Exit 1, never Docker's reserved 2, and one line saying what is wrong."""
    monkeypatch.delenv("FEDGATE_CONFIG", raising=False)
    args: list[str] = []
    if text is not None:
        (tmp_path / "c.yaml").write_text(text)
        args = ["-c", str(tmp_path / "c.yaml")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert message in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("host", "override", "url"),
    [
        ("0.0.0.0", None, "http://127.0.0.1:9000/healthz"),
        ("::", None, "http://[::1]:9000/healthz"),
        ("127.0.0.1", None, "http://127.0.0.1:9000/healthz"),
        ("::1", None, "http://[::1]:9000/healthz"),
        ("10.1.2.3", None, "http://10.1.2.3:9000/healthz"),
        ("gateway.internal", None, "http://gateway.internal:9000/healthz"),
        ("10.1.2.3", "0.0.0.0", "http://127.0.0.1:9000/healthz"),
    ],
)
def test_probe_url_follows_listen(tmp_path: Path, host: str, override: str | None, url: str) -> None:
    config = write_config(tmp_path / "c.yaml", 9000, host=host)
    assert probe_url(config, host=override) == url
    assert probe_url(config, host=override, ready=True) == url.replace("healthz", "readyz")


def test_port_override_and_defaults(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text('account_id: "123456789012"\n')
    assert probe_url(tmp_path / "c.yaml") == "http://127.0.0.1:8080/healthz"  # ListenSettings' defaults
    assert probe_url(tmp_path / "c.yaml", port=9443) == "http://127.0.0.1:9443/healthz"
    with pytest.raises(ConfigError, match="cannot read"):
        probe_url(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"^listen\.port: "):
        probe_url(tmp_path / "c.yaml", port=70000)
    (tmp_path / "list.yaml").write_text("listen: [8080]\n")
    with pytest.raises(ConfigError, match=r"^listen: "):
        probe_url(tmp_path / "list.yaml")


def test_probe_url_follows_listen_tls(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        'account_id: "123456789012"\nlisten: {port: 8443, tls: {cert_file: /x.pem, key_file: /x.key}}\n'
    )
    assert probe_url(tmp_path / "c.yaml", ready=True) == "https://127.0.0.1:8443/readyz"


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "1e9"])
def test_timeout_must_be_sensible(timeout: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["-c", "x.yaml", "--timeout", timeout])
    assert "--timeout" in capsys.readouterr().err
