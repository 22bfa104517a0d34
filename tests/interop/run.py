#!/usr/bin/env python3
"""The interop matrix of issue 16: mcp-oauth against authorization servers and MCP server
frameworks as their users deploy them, judged from the servers' own request logs.

Run through ``scripts/interop`` (which builds the binaries and uses .deps/venv's Python,
where the MCP Python SDK for the proxy path lives). Standard library only.

Pairs:
* oidc-provider (tests/node/oidc-as.mjs, ``AS_PROFILE=default``) with every MCP server:
  FastMCP 4.x (tests/python/fastmcp_server.py), the official Python SDK server
  (tests/python/mcp_server.py with the SDK's own metadata, ``--prm-as sdk``), the official
  TypeScript SDK server (tests/node/ts-mcp-server.mjs) and mcp-oauth-server's rmcp example
  (crates/mcp-oauth-server/examples/rmcp_server.rs);
* every app-embedded pair ``tests/interop/pairs/<name>/launcher`` (tests/interop/CONTRACT.md),
  and any ``--launcher PATH``.

Scenarios, each through ``call`` (``mcp-oauth call URL whoami``) and ``proxy`` (the MCP
Python SDK's stdio client, tests/python/proxy_client.py, running ``mcp-oauth proxy URL``),
each path with its own MCP_OAUTH_HOME and the headless browser tests/browser.sh:
  1 first-login          the browser once, one registration, the tool answers
  2 second-run           no browser, no token request
  3 refresh              after the access token expired: one refresh, no browser
                         (rotation checked where the AS rotates)
  4 concurrent-refresh   two processes at once on an expired token: exactly one refresh,
                         no refused token request (a revoked grant), both succeed
  5 as-restart           the AS restarted (and its clients forgotten): one new
                         registration, one browser, the tool answers
  6 user-denies          the user refuses (POST /__interop/deny-next): a non-zero exit
                         within a bound, the browser opened once; then a retry succeeds
  7 logout               ``mcp-oauth logout URL``: a revocation request where the AS has
                         an endpoint; the next use needs a login (one browser)

Output: ``PASS|FAIL|n/a  <as> <server> <scenario> <path> <reason>`` per line, then the
n/a count, then ``N passed, M failed`` alone on the last line; exit 1 on any FAIL.
A full run (no --only) also writes docs/interop.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import fnmatch
import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "tests/node/node_modules/.bin/node"
VENV_PY = ROOT / ".deps/venv/bin/python"
FASTMCP_PY = ROOT / ".deps/venv-fastmcp/bin/python"
BROWSER = ROOT / "tests/browser.sh"
PROXY_CLIENT = ROOT / "tests/python/proxy_client.py"
PAIRS_DIR = ROOT / "tests/interop/pairs"
LAST_RUN = ROOT / "docs/interop.md"

SCENARIOS = [
    (1, "first-login"),
    (2, "second-run"),
    (3, "refresh"),
    (4, "concurrent-refresh"),
    (5, "as-restart"),
    (6, "user-denies"),
    (7, "logout"),
]
PATHS = ("call", "proxy")
RUN_TIMEOUT = 90.0  # one client run (a login included)
DENY_BOUND = 30.0  # a refused login must end within this
READY_TIMEOUT = 120.0  # a server's ready line
MAX_TOKEN_WAIT = 90.0  # longest access-token lifetime the runner waits out (Cloudflare's minimum is 60 s)
PROXY_VARS = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"]

print_lock = threading.Lock()


def say(msg: str) -> None:
    with print_lock:
        print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes


class StartError(Exception):
    pass


def tail(path: Path, n: int = 1500) -> str:
    try:
        data = path.read_text(errors="replace")
    except OSError:
        return ""
    return data[-n:]


class Proc:
    """A server process in its own process group; stdout and stderr go to files (so that
    nothing blocks on a pipe), stdin is a pipe held open (…_EXIT_ON_STDIN_EOF)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logdir: Path, cwd: Path | None = None):
        self.name = name
        self.argv = argv
        self.env = env
        self.logdir = logdir
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.stdout_path = logdir / f"{name}.stdout"
        self.stderr_path = logdir / f"{name}.stderr"

    def start(self, ready: Callable[[str], Any], timeout: float = READY_TIMEOUT) -> Any:
        """Starts the process and waits until ``ready`` finds what it needs in stdout."""
        self.starts += 1
        self.stdout_path = self.logdir / f"{self.name}.{self.starts}.stdout"
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "ab")
        self.popen = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        out.close()
        err.close()
        deadline = time.monotonic() + timeout
        while True:
            found = ready(self.stdout_path.read_text(errors="replace"))
            if found is not None:
                return found
            if self.popen.poll() is not None:
                raise StartError(
                    f"{self.name} exited with {self.popen.returncode} before it was ready: "
                    f"{tail(self.stderr_path, 600).strip() or tail(self.stdout_path, 600).strip()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise StartError(f"{self.name} printed no ready line within {timeout:.0f} s: {tail(self.stderr_path, 600).strip()}")
            time.sleep(0.05)

    def stop(self) -> None:
        p = self.popen
        if p is None:
            return
        self.popen = None
        try:
            if p.stdin:
                p.stdin.close()
        except OSError:
            pass
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        # The whole group: children of a launcher too.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass


def json_ready(text: str) -> dict[str, Any] | None:
    """The first JSON line with "ready": true (other lines, e.g. oidc-provider's notices
    on stdout, are skipped)."""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if isinstance(v, dict) and v.get("ready") is True:
                return v
    return None


def regex_ready(pattern: str) -> Callable[[str], dict[str, Any] | None]:
    rx = re.compile(pattern, re.M)

    def ready(text: str) -> dict[str, Any] | None:
        m = rx.search(text)
        return m.groupdict() if m else None

    return ready


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    env["PATH"] = os.pathsep.join([str(NODE.parent), str(VENV_PY.parent), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def http(method: str, url: str, timeout: float = 10) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def as_metadata(issuer: str) -> dict[str, Any]:
    base = issuer.rstrip("/")
    parsed = urllib.parse.urlsplit(issuer)
    candidates = [
        f"{parsed.scheme}://{parsed.netloc}/.well-known/oauth-authorization-server{parsed.path.rstrip('/')}",
        f"{base}/.well-known/openid-configuration",
    ]
    errors = []
    for url in candidates:
        try:
            status, body = http("GET", url)
            if status == 200:
                return json.loads(body)
            errors.append(f"{url}: {status}")
        except Exception as e:  # noqa: BLE001 - try the next one
            errors.append(f"{url}: {e}")
    raise StartError(f"no AS metadata for {issuer}: {'; '.join(errors)}")


def path_of(url: str | None) -> str | None:
    return urllib.parse.urlsplit(url).path if url else None


def read_json_lines(path: Path | None) -> list[dict[str, Any]]:
    if path is None:
        return []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if isinstance(v, dict):
            out.append(v)
    return out


# ---------------------------------------------------------------- pairs


class Pair:
    """One authorization server with one MCP server, started once, kept warm."""

    as_name = "?"
    server_name = "?"
    describe: dict[str, Any]
    issuer: str
    mcp_url: str
    as_log: Path
    mcp_log: Path | None
    versions: dict[str, str]

    @property
    def key(self) -> str:
        return f"{self.as_name}/{self.server_name}"

    def start(self, workdir: Path, at_ttl: int) -> None:
        raise NotImplementedError

    def restart(self) -> str:
        """Restarts the AS; returns what was done (for the reason)."""
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def control(self, what: str) -> tuple[bool, str]:
        # On the AS's origin (CONTRACT.md), whatever path the issuer has.
        parts = urllib.parse.urlsplit(self.issuer)
        url = f"{parts.scheme}://{parts.netloc}/__interop/{what}"
        try:
            status, body = http("POST", url)
        except Exception as e:  # noqa: BLE001
            return False, f"POST {url}: {e}"
        return 200 <= status < 300, f"POST /__interop/{what}: {status} {body[:200].decode(errors='replace')}"


OIDC_DESCRIBE = {
    "revocation": "n/a: oidc-provider's token revocation endpoint (RFC 7009) is the opt-in feature "
    "features.revocation (default enabled: false), left at its default",
    "rotation": True,
    "rotation_note": "public clients' refresh tokens rotate (rotateRefreshToken default), reuse revokes the grant",
    "restart_forgets_clients": True,
    "notes": "AS_PROFILE=default: oidc-provider's defaults but for keys, open DCR and resource indicators with JWT "
    "access tokens; memory adapter (a restart forgets clients and grants); AS_KEY_FILE keeps the signing key "
    "across the restart, as a deployment's configured keys",
}


def node_package_version(pkg: str) -> str:
    try:
        return json.loads((ROOT / "tests/node/node_modules" / pkg / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "?"


def cargo_lock_version(name: str) -> str:
    try:
        text = (ROOT / "Cargo.lock").read_text()
    except OSError:
        return "?"
    m = re.search(rf'\[\[package\]\]\nname = "{re.escape(name)}"\nversion = "([^"]+)"', text)
    return m.group(1) if m else "?"


def venv_versions(python: Path, dists: list[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        f"print(json.dumps({{d: m.version(d) for d in {dists!r}}}))"
    )
    try:
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=30)
        return json.loads(out.stdout)
    except Exception:  # noqa: BLE001
        return {d: "?" for d in dists}


class OidcPair(Pair):
    """oidc-provider (AS_PROFILE=default) in front of one of the MCP servers."""

    SERVERS = {
        "fastmcp": "FastMCP 4.x, RemoteAuthProvider + JWTVerifier as its docs write it (tests/python/fastmcp_server.py)",
        "mcp-python-sdk": "the official Python SDK 1.x server with AuthSettings + a TokenVerifier, "
        "required scope mcp:tools, the SDK's own metadata (tests/python/mcp_server.py --prm-as sdk)",
        "mcp-ts-sdk": "the official TypeScript SDK: McpServer + StreamableHTTPServerTransport, requireBearerAuth, "
        "mcpAuthMetadataRouter, a jose JWT verifier (tests/node/ts-mcp-server.mjs)",
        "mcp-oauth-server": "our McpAuthLayer on rmcp (crates/mcp-oauth-server/examples/rmcp_server.rs), scope mcp",
    }

    def __init__(self, server: str, rmcp_bin: Path):
        self.as_name = "oidc-provider"
        self.server_name = server
        self.rmcp_bin = rmcp_bin
        self.describe = dict(OIDC_DESCRIBE, **{"as": self.as_name, "server": server})
        self.as_proc: Proc | None = None
        self.mcp_proc: Proc | None = None
        self.as_port = 0

    def _as_env(self) -> dict[str, str]:
        env = base_env()
        env.update(
            AS_PROFILE="default",
            AS_LOG=str(self.as_log),
            AT_TTL=str(self.at_ttl),
            AS_KEY_FILE=str(self.workdir / "as-signing-key.json"),
            AS_CONTROL="1",  # test-only: /__interop/deny-next (scenario 6)
            AS_EXIT_ON_STDIN_EOF="1",
        )
        if self.server_name == "mcp-oauth-server":
            # The resource server's scope, which the AS must know to grant it (as a
            # deployment registers its API's scopes); the rmcp example requires "mcp".
            env["AS_SCOPES"] = "mcp"
        return env

    def _start_as(self) -> None:
        self.as_proc = Proc("oidc-provider", [str(NODE), str(ROOT / "tests/node/oidc-as.mjs"), str(self.as_port)], self._as_env(), self.workdir)
        ready = self.as_proc.start(json_ready)
        self.issuer = ready["issuer"]
        self.as_port = int(ready["port"])

    def start(self, workdir: Path, at_ttl: int) -> None:
        self.workdir = workdir
        self.at_ttl = at_ttl
        self.as_log = workdir / "as.log"
        self.mcp_log = workdir / "mcp.log"
        self._start_as()
        env = base_env()
        env["MCP_EXIT_ON_STDIN_EOF"] = "1"
        s = self.server_name
        if s == "fastmcp":
            env["MCP_LOG"] = str(self.mcp_log)
            argv = [str(FASTMCP_PY), str(ROOT / "tests/python/fastmcp_server.py"), "--issuer", self.issuer, "--port", "0"]
            ready: Callable[[str], Any] = json_ready
        elif s == "mcp-python-sdk":
            env["MCP_LOG"] = str(self.mcp_log)
            # --prm-as sdk: the metadata document exactly as the SDK serves it.
            argv = [str(VENV_PY), str(ROOT / "tests/python/mcp_server.py"), "--issuer", self.issuer, "--port", "0", "--prm-as", "sdk"]
            ready = json_ready
        elif s == "mcp-ts-sdk":
            env["MCP_LOG"] = str(self.mcp_log)
            argv = [str(NODE), str(ROOT / "tests/node/ts-mcp-server.mjs"), "--issuer", self.issuer, "--port", "0"]
            ready = json_ready
        elif s == "mcp-oauth-server":
            self.mcp_log = None  # the example has no request log; its tracing goes to stdout
            env.update(MCP_ADDR="127.0.0.1:0", MCP_ISSUER=self.issuer, RUST_LOG="mcp_oauth_server=debug,info")
            argv = [str(self.rmcp_bin)]
            ready = regex_ready(r"^MCP endpoint:\s+(?P<url>\S+)$")
        else:
            raise StartError(f"unknown server {s}")
        self.mcp_proc = Proc(s, argv, env, workdir)
        info = self.mcp_proc.start(ready)
        self.mcp_url = info["url"]
        self.versions = self._versions(info)

    def _versions(self, ready: dict[str, Any]) -> dict[str, str]:
        v = {"oidc-provider": node_package_version("oidc-provider"), "node": node_package_version("node")}
        s = self.server_name
        if s == "fastmcp":
            v.update(venv_versions(FASTMCP_PY, ["fastmcp", "mcp"]))
        elif s == "mcp-python-sdk":
            v.update(venv_versions(VENV_PY, ["mcp", "PyJWT"]))
        elif s == "mcp-ts-sdk":
            v.update(ready.get("versions") or {})
        elif s == "mcp-oauth-server":
            v.update({"mcp-oauth-server": cargo_lock_version("mcp-oauth-server"), "rmcp": cargo_lock_version("rmcp")})
        return v

    def restart(self) -> str:
        assert self.as_proc is not None
        self.as_proc.stop()
        self._start_as()
        return "oidc-provider restarted on the same port (memory adapter: clients and grants gone)"

    def stop(self) -> None:
        for p in (self.mcp_proc, self.as_proc):
            if p:
                p.stop()


class LauncherPair(Pair):
    """An app-embedded pair: one launcher (tests/interop/CONTRACT.md)."""

    def __init__(self, launcher: Path):
        self.launcher = launcher
        self.proc: Proc | None = None
        self.ports = (0, 0)
        self.describe_error: str | None = None
        self.describe = {}
        try:
            out = subprocess.run(
                [str(launcher), "--describe"],
                cwd=launcher.parent,
                env=self._env_base(),
                capture_output=True,
                text=True,
                timeout=60,
            )
            if out.returncode != 0:
                raise StartError(f"exit {out.returncode}: {out.stderr.strip()[-400:]}")
            line = next((l for l in out.stdout.splitlines() if l.strip().startswith("{")), "")
            self.describe = json.loads(line)
        except Exception as e:  # noqa: BLE001 - reported as FAIL lines
            self.describe_error = f"{launcher} --describe failed: {e}"
        self.as_name = str(self.describe.get("as") or launcher.parent.name)
        self.server_name = str(self.describe.get("server") or "?")

    def _env_base(self) -> dict[str, str]:
        env = base_env()
        env["INTEROP_ROOT"] = str(ROOT)
        return env

    def start(self, workdir: Path, at_ttl: int) -> None:
        if self.describe_error:
            raise StartError(self.describe_error)
        self.workdir = workdir
        self.as_log = workdir / "as.log"
        self.mcp_log = workdir / "mcp.log"
        state = workdir / "state"
        state.mkdir(exist_ok=True)
        self.at_ttl = at_ttl
        self.state = state
        self._start()
        self.versions = {str(k): str(v) for k, v in {**(self.describe.get("versions") or {}), **(self.ready.get("versions") or {})}.items()}

    def _start(self) -> None:
        env = self._env_base()
        env.update(
            INTEROP_AS_PORT=str(self.ports[0]),
            INTEROP_MCP_PORT=str(self.ports[1]),
            INTEROP_STATE_DIR=str(self.state),
            INTEROP_AS_LOG=str(self.as_log),
            INTEROP_MCP_LOG=str(self.mcp_log),
            INTEROP_AT_TTL=str(self.at_ttl),
            INTEROP_CONTROL="1",
            INTEROP_EXIT_ON_STDIN_EOF="1",
        )
        self.proc = Proc("launcher", [str(self.launcher)], env, self.workdir, cwd=self.launcher.parent)
        self.ready = self.proc.start(json_ready)
        self.issuer = self.ready["issuer"]
        self.mcp_url = self.ready["mcp_url"]
        self.ports = (int(self.ready.get("as_port") or 0), int(self.ready.get("mcp_port") or 0))

    def restart(self) -> str:
        assert self.proc is not None
        self.proc.stop()
        self._start()
        if self.describe.get("restart_forgets_clients") is False:
            ok, msg = self.control("forget-clients")
            if not ok:
                raise StartError(f"launcher restarted, but {msg}")
            return "launcher restarted, then its clients deleted (POST /__interop/forget-clients)"
        return "launcher restarted on the same ports (its clients forgotten)"

    def stop(self) -> None:
        if self.proc:
            self.proc.stop()


# ---------------------------------------------------------------- scenarios


@dataclass
class Result:
    verdict: str  # PASS | FAIL | n/a
    scenario: int
    path: str
    reason: str


@dataclass
class Run:
    rc: int | None  # None: timed out (killed)
    duration: float
    stdout: str
    stderr_path: Path
    whoami: dict[str, Any] | None

    @property
    def ok(self) -> bool:
        return self.rc == 0 and bool(self.whoami and self.whoami.get("sub"))

    def error_line(self) -> str:
        """The client's own last error line, for reasons."""
        lines = [l.strip() for l in tail(self.stderr_path, 6000).splitlines() if l.strip()]
        for l in reversed(lines):
            if l.startswith(("error", "Error")) or "Error:" in l or " ERROR " in l:
                return l[:300]
        return lines[-1][:300] if lines else ""

    def describe(self) -> str:
        if self.rc is None:
            return f"no exit within {self.duration:.0f} s (killed)"
        if self.rc != 0:
            return f"exit {self.rc} after {self.duration:.1f} s: {self.error_line()}"
        if not self.ok:
            return f"exit 0 but no whoami answer: {self.stdout.strip()[-300:]}"
        return f"ok in {self.duration:.1f} s"


@dataclass
class Home:
    path: str  # call | proxy
    dir: Path
    browser_log: Path
    expires_at: float = 0.0  # of the stored access token (epoch seconds), 0 = none known
    obtained_at: float = 0.0


class PairRun:
    def __init__(self, pair: Pair, args: argparse.Namespace, workdir: Path):
        self.pair = pair
        self.args = args
        self.workdir = workdir
        self.results: list[Result] = []
        self.runs = 0
        self.meta: dict[str, Any] = {}
        self.na: dict[int, str] = {}
        self.xdg = workdir / "xdg-config"
        self.xdg.mkdir(exist_ok=True)

    # ---- helpers

    def add(self, verdict: str, scenario: int, path: str, reason: str) -> None:
        self.results.append(Result(verdict, scenario, path, reason))

    def home(self, name: str, path: str) -> Home:
        d = self.workdir / f"home-{name}"
        d.mkdir(mode=0o700, exist_ok=True)  # as a user's store is (the client warns otherwise)
        return Home(path, d, self.workdir / f"browser-{name}.log")

    def env(self, home: Home) -> dict[str, str]:
        env = base_env()
        for var in ("DISPLAY", "WAYLAND_DISPLAY", "MCP_OAUTH_CONFIG", "MCP_OAUTH_PROFILE", "RUST_LOG"):
            env.pop(var, None)
        env.update(
            MCP_OAUTH_HOME=str(home.dir),
            XDG_CONFIG_HOME=str(self.xdg),
            BROWSER=str(BROWSER),
            BROWSER_LOG=str(home.browser_log),
            RUST_LOG="mcp_oauth=info",
        )
        return env

    def argv(self, path: str) -> list[str]:
        if path == "call":
            return [str(self.args.bin), "call", self.pair.mcp_url, "whoami"]
        return [str(VENV_PY), str(PROXY_CLIENT), str(self.args.bin), "proxy", self.pair.mcp_url]

    def spawn(self, home: Home, label: str) -> tuple[subprocess.Popen[bytes], Path, float]:
        self.runs += 1
        err = self.workdir / f"run{self.runs:02d}-{label}-{home.path}.stderr"
        p = subprocess.Popen(
            self.argv(home.path),
            env=self.env(home),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=open(err, "wb"),
            start_new_session=True,
        )
        return p, err, time.monotonic()

    def finish(self, home: Home, p: subprocess.Popen[bytes], err: Path, t0: float, timeout: float = RUN_TIMEOUT) -> Run:
        try:
            out, _ = p.communicate(timeout=max(0.1, timeout - (time.monotonic() - t0)))
            rc: int | None = p.returncode
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            out, _ = p.communicate()
            rc = None
        duration = time.monotonic() - t0
        text = out.decode(errors="replace")
        return Run(rc, duration, text, err, self.whoami(home.path, text))

    def run(self, home: Home, label: str, timeout: float = RUN_TIMEOUT) -> Run:
        p, err, t0 = self.spawn(home, label)
        return self.finish(home, p, err, t0, timeout)

    @staticmethod
    def whoami(path: str, stdout: str) -> dict[str, Any] | None:
        for line in reversed(stdout.splitlines()):
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if path == "proxy":
                v = v.get("whoami") if isinstance(v, dict) else None
            return v if isinstance(v, dict) else None
        return None

    def mcp_oauth(self, home: Home, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        self.runs += 1
        return subprocess.run([str(self.args.bin), *args], env=self.env(home), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def note_token(self, home: Home) -> dict[str, Any] | None:
        """Reads the stored credential (mcp-oauth status --json): its expiry drives the waits."""
        try:
            out = self.mcp_oauth(home, "status", self.pair.mcp_url, "--json")
            entries = json.loads(out.stdout or "[]")
        except Exception:  # noqa: BLE001
            entries = []
        entry = next((e for e in entries if e.get("server_url") == self.pair.mcp_url), entries[0] if entries else None)
        if entry and entry.get("expires_at"):
            home.expires_at = float(entry["expires_at"])
            home.obtained_at = float(entry.get("obtained_at") or time.time())
        else:
            home.expires_at = 0.0
        return entry

    def as_lines(self) -> list[dict[str, Any]]:
        return read_json_lines(self.pair.as_log)

    def browser_lines(self, home: Home) -> list[str]:
        try:
            return home.browser_log.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def settle(self, homes: list[Home]) -> None:
        """Waits (at most 3 s) until every browser that was opened has finished, so that its
        hops are in the log, and lets the servers' log lines land."""
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if all(
                sum(" open " in l for l in self.browser_lines(h)) <= sum(" done " in l for l in self.browser_lines(h)) for h in homes
            ):
                break
            time.sleep(0.05)
        time.sleep(0.15)

    def mark(self, homes: list[Home]) -> dict[str, Any]:
        return {"as": len(self.as_lines()), "browser": {h.dir: len(self.browser_lines(h)) for h in homes}}

    def since(self, mark: dict[str, Any], home: Home) -> tuple[list[dict[str, Any]], list[str]]:
        return self.as_lines()[mark["as"] :], self.browser_lines(home)[mark["browser"][home.dir] :]

    # AS log classification (paths from the AS metadata)
    def _is(self, line: dict[str, Any], kind: str, method: str = "POST") -> bool:
        p = self.meta.get(kind)
        return bool(p) and line.get("method") == method and line.get("path") == p

    def registrations(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [l for l in lines if self._is(l, "registration")]

    def _shared_token_path(self) -> bool:
        """Some ASes revoke at the token endpoint itself (Cloudflare's provider): there a
        request without grant_type is a revocation."""
        return bool(self.meta.get("token")) and self.meta.get("token") == self.meta.get("revocation")

    def tokens(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        shared = self._shared_token_path()
        return [l for l in lines if self._is(l, "token") and not (shared and not l.get("grant_type"))]

    def revocations(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        shared = self._shared_token_path()
        return [l for l in lines if self._is(l, "revocation") and not (shared and l.get("grant_type"))]

    def authorizations(self, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [l for l in lines if self._is(l, "authorization", "GET")]

    @staticmethod
    def opens(blines: list[str]) -> int:
        return sum(" open " in l for l in blines)

    def read_meta(self) -> None:
        m = as_metadata(self.pair.issuer)
        self.meta = {
            "registration": path_of(m.get("registration_endpoint")),
            "token": path_of(m.get("token_endpoint")),
            "revocation": path_of(m.get("revocation_endpoint")),
            "authorization": path_of(m.get("authorization_endpoint")),
        }

    @staticmethod
    def token_summary(lines: list[dict[str, Any]]) -> str:
        parts = []
        for l in lines:
            s = f"{l.get('grant_type', 'token')} {l.get('status')}"
            if l.get("error"):
                s += f" {l['error']}"
            parts.append(s)
        return ", ".join(parts) or "none"

    def wait_expired(self, homes: list[Home]) -> str | None:
        """Sleeps until every home's access token has expired; an error text when one
        would take longer than MAX_TOKEN_WAIT."""
        latest = 0.0
        for h in homes:
            if not h.expires_at:
                continue
            if h.expires_at - h.obtained_at > MAX_TOKEN_WAIT:
                return f"the access token lives {h.expires_at - h.obtained_at:.0f} s (INTEROP_AT_TTL not honoured?); the runner waits at most {MAX_TOKEN_WAIT:.0f} s"
            latest = max(latest, h.expires_at)
        # expires_at is whole seconds; one more so that the token is past exp at the RS too.
        left = latest + 1.0 - time.time()
        if left > 0:
            time.sleep(left)
        return None

    # ---- the scenarios

    def s1_first_login(self, h: Home) -> None:
        m = self.mark([h])
        r = self.run(h, "s1")
        self.settle([h])
        lines, b = self.since(m, h)
        regs, toks, opens = self.registrations(lines), self.tokens(lines), self.opens(b)
        entry = self.note_token(h)
        problems = []
        if not r.ok:
            problems.append(r.describe())
        if opens != 1:
            problems.append(f"{opens} browser opens (want 1)")
        if self.meta.get("registration") and len(regs) != 1:
            problems.append(f"{len(regs)} registrations (want 1)")
        if not any(t.get("status") == 200 for t in toks):
            problems.append(f"no successful token request ({self.token_summary(toks)})")
        rt = entry.get("refresh_token") if entry else None
        detail = (
            f"{opens} browser, {len(regs)} registration, token requests: {self.token_summary(toks)}; "
            f"scope requested {entry.get('requested_scope')!r} granted {entry.get('scope')!r}, refresh token {'yes' if rt else 'no'}"
            if entry
            else f"{opens} browser, {len(regs)} registration, no stored credential"
        )
        if problems:
            self.add("FAIL", 1, h.path, "; ".join(problems) + f" [{detail}]")
        else:
            self.add("PASS", 1, h.path, f"logged in as {r.whoami.get('sub')}: {detail}")  # type: ignore[union-attr]

    def s2_second_run(self, h: Home) -> None:
        if not h.expires_at:
            self.add("FAIL", 2, h.path, "no stored access token after scenario 1")
            return
        lifetime = h.expires_at - h.obtained_at
        margin = min(60.0, float(int(lifetime) // 2))
        m = self.mark([h])
        started = time.time()
        r = self.run(h, "s2")
        self.settle([h])
        lines, b = self.since(m, h)
        toks, opens = self.tokens(lines), self.opens(b)
        problems = []
        if not r.ok:
            problems.append(r.describe())
        if opens:
            problems.append(f"{opens} browser opens (want 0)")
        if toks:
            if started > h.expires_at - margin:
                problems.append(
                    f"runner too slow: the token was already within the client's refresh margin ({margin:.0f} s) when the run started; token requests: {self.token_summary(toks)}"
                )
            else:
                problems.append(f"{len(toks)} token requests (want 0): {self.token_summary(toks)}")
        other = [f"{l.get('method')} {l.get('path')}" for l in lines if l not in toks]
        detail = f"AS requests: {', '.join(other) if other else 'none'}"
        if problems:
            self.add("FAIL", 2, h.path, "; ".join(problems) + f" [{detail}]")
        else:
            self.add("PASS", 2, h.path, f"stored token used: no browser, no token request ({detail})")

    def rotation_note(self, toks: list[dict[str, Any]]) -> tuple[str | None, str]:
        rot = self.pair.describe.get("rotation")
        issued = [t.get("refresh_token_issued") for t in toks if t.get("status") == 200 and "refresh_token_issued" in t]
        if rot is True:
            if issued and not all(issued):
                return "the AS rotates refresh tokens but its log shows a refresh without a new one", ""
            if issued:
                return None, "rotated: a new refresh token issued (AS log)"
            return None, "rotation per --describe (not in the AS log; the next scenario uses the rotated token)"
        if rot is False:
            return None, "no rotation (per the AS's docs)"
        return None, f"rotation {rot}" if rot else "rotation unknown"

    def s3_refresh(self, h: Home) -> None:
        if not h.expires_at:
            self.add("FAIL", 3, h.path, "no stored access token to let expire")
            return
        m = self.mark([h])
        r = self.run(h, "s3")
        self.settle([h])
        lines, b = self.since(m, h)
        toks, opens = self.tokens(lines), self.opens(b)
        self.note_token(h)
        problems = []
        if not r.ok:
            problems.append(r.describe())
        if opens:
            problems.append(f"{opens} browser opens (want 0)")
        refreshes = [t for t in toks if t.get("grant_type") in ("refresh_token", None)]
        if len(toks) != 1 or len(refreshes) != 1 or toks[0].get("status") != 200:
            problems.append(f"token requests: {self.token_summary(toks)} (want one refresh_token 200)")
        rot_problem, rot_note = self.rotation_note(toks)
        if rot_problem:
            problems.append(rot_problem)
        if problems:
            self.add("FAIL", 3, h.path, "; ".join(problems))
        else:
            self.add("PASS", 3, h.path, f"expired token refreshed without the browser ({self.token_summary(toks)}); {rot_note}")

    def s4_concurrent(self, h: Home) -> None:
        if not h.expires_at:
            self.add("FAIL", 4, h.path, "no stored access token to let expire")
            return
        m = self.mark([h])
        a = self.spawn(h, "s4a")
        bp = self.spawn(h, "s4b")
        ra = self.finish(h, *a)
        rb = self.finish(h, *bp)
        self.settle([h])
        lines, b = self.since(m, h)
        toks, opens = self.tokens(lines), self.opens(b)
        self.note_token(h)
        problems = []
        for name, r in (("first", ra), ("second", rb)):
            if not r.ok:
                problems.append(f"{name} process: {r.describe()}")
        if opens:
            problems.append(f"{opens} browser opens (want 0)")
        if len(toks) != 1:
            problems.append(f"{len(toks)} token requests (want exactly 1 refresh): {self.token_summary(toks)}")
        refused = [t for t in toks if (t.get("status") or 0) >= 400]
        if refused:
            problems.append(f"refused token requests (a revoked grant?): {self.token_summary(refused)}")
        if problems:
            self.add("FAIL", 4, h.path, "; ".join(problems))
        else:
            self.add("PASS", 4, h.path, f"both processes succeeded on one refresh ({self.token_summary(toks)}), no browser")

    def s5_restart(self, h: Home, restart_note: str) -> None:
        m = self.mark([h])
        r = self.run(h, "s5")
        self.settle([h])
        lines, b = self.since(m, h)
        regs, toks, opens = self.registrations(lines), self.tokens(lines), self.opens(b)
        self.note_token(h)
        problems = []
        if not r.ok:
            problems.append(r.describe())
        if self.meta.get("registration") and len(regs) != 1:
            problems.append(f"{len(regs)} registrations (want 1)")
        if opens != 1:
            problems.append(f"{opens} browser opens (want 1)")
        detail = f"{restart_note}; token requests: {self.token_summary(toks)}, {len(regs)} registration, {opens} browser"
        if problems:
            self.add("FAIL", 5, h.path, "; ".join(problems) + f" [{detail}]")
        else:
            self.add("PASS", 5, h.path, f"recovered: {detail}")

    def s6_deny(self, h: Home) -> None:
        ok, msg = self.pair.control("deny-next")
        if not ok:
            self.add("FAIL", 6, h.path, f"cannot make the user refuse: {msg}")
            return
        m = self.mark([h])
        r = self.run(h, "s6-deny", timeout=max(DENY_BOUND + 10, 45))
        self.settle([h])
        lines, b = self.since(m, h)
        opens = self.opens(b)
        denied_seen = any("error=access_denied" in l for l in b)
        problems = []
        if r.rc == 0:
            who = r.whoami.get("sub") if r.whoami else None
            problems.append(
                f"the refused login ended with exit 0, logged in as {who} after {opens} authorizations"
                if who
                else f"the refused login ended with exit 0 ({r.stdout.strip()[-120:]})"
            )
        elif r.rc is None or r.duration > DENY_BOUND:
            problems.append(f"no prompt exit after the refusal: {r.describe()} (bound {DENY_BOUND:.0f} s)")
        if not denied_seen:
            problems.append("the refusal (error=access_denied) never reached the client's redirect URI")
            # The deny may still be armed: spend it, so that the retry is judged alone.
        if opens != 1:
            problems.append(f"{opens} browser opens for one refused login (want 1: the user was asked again)")
        deny_detail = (
            f"refused login: exit {r.rc} in {r.duration:.1f} s, {opens} browser, "
            f"{len(self.registrations(lines))} registration, {len(self.authorizations(lines))} authorization requests"
        )
        m2 = self.mark([h])
        r2 = self.run(h, "s6-retry")
        self.settle([h])
        lines2, b2 = self.since(m2, h)
        opens2 = self.opens(b2)
        if not r2.ok:
            problems.append(f"retry: {r2.describe()}")
        if opens2 != 1:
            problems.append(f"retry: {opens2} browser opens (want 1)")
        retry_detail = f"retry: {r2.describe()}, {opens2} browser, {len(self.registrations(lines2))} registration"
        said = f"; client said: {r.error_line()}" if r.rc else ""
        if problems:
            self.add("FAIL", 6, h.path, "; ".join(problems) + f" [{deny_detail}; {retry_detail}{said}]")
        else:
            self.add("PASS", 6, h.path, f"{deny_detail} ({r.error_line()}); {retry_detail}")

    def s7_logout(self, h: Home) -> None:
        m = self.mark([h])
        out = self.mcp_oauth(h, "logout", self.pair.mcp_url)
        self.settle([h])
        lines, _ = self.since(m, h)
        revs = self.revocations(lines)
        problems = []
        if out.returncode != 0:
            problems.append(f"logout exit {out.returncode}: {out.stderr.strip()[-300:]}")
        rev = self.pair.describe.get("revocation")
        if self.meta.get("revocation"):
            summary = ", ".join(
                f"{l.get('token_type_hint', 'token')} {l.get('status')}" + (f" {l['error']}" if l.get("error") else "") for l in revs
            ) or "none"
            if not any(l.get("status") == 200 for l in revs):
                problems.append(f"no successful revocation request at {self.meta['revocation']} ({summary})")
            rev_note = f"revoked at the AS: {summary}"
            if isinstance(rev, str):
                rev_note += f" (although --describe says {rev})"
        else:
            if rev is True:
                problems.append("--describe says the AS revokes, but its metadata has no revocation_endpoint")
            rev_note = f"revocation {rev}" if isinstance(rev, str) else "revocation: no endpoint in the AS metadata"
        m2 = self.mark([h])
        r = self.run(h, "s7-after")
        self.settle([h])
        lines2, b2 = self.since(m2, h)
        opens = self.opens(b2)
        if not r.ok:
            problems.append(f"next use: {r.describe()}")
        if opens != 1:
            problems.append(f"next use: {opens} browser opens (want 1: a login)")
        detail = f"{rev_note}; next use logged in again ({opens} browser, {len(self.registrations(lines2))} registration)"
        if problems:
            self.add("FAIL", 7, h.path, "; ".join(problems) + f" [{detail}]")
        else:
            self.add("PASS", 7, h.path, detail)

    # ---- the pair's whole run

    def execute(self) -> list[Result]:
        pair = self.pair
        na = pair.describe.get("na") or {}
        self.na = {int(k): str(v) for k, v in na.items() if str(k).isdigit()}
        t0 = time.monotonic()
        try:
            pair.start(self.workdir, self.args.at_ttl)
            self.read_meta()
        except Exception as e:  # noqa: BLE001 - every line of the pair fails with the reason
            pair.stop()
            for n, _ in SCENARIOS:
                for path in PATHS:
                    self.add("FAIL", n, path, f"the pair did not start: {e}")
            return self.results
        say(f"interop: {pair.key} up in {time.monotonic() - t0:.1f} s (issuer {pair.issuer}, MCP {pair.mcp_url})")
        try:
            self._scenarios()
        except Exception as e:  # noqa: BLE001 - a runner error is a failure, never a skip
            done = {(r.scenario, r.path) for r in self.results}
            for n, _ in SCENARIOS:
                for path in PATHS:
                    if (n, path) not in done:
                        self.add("FAIL", n, path, f"runner error: {type(e).__name__}: {e}")
        finally:
            pair.stop()
        say(f"interop: {pair.key} done in {time.monotonic() - t0:.1f} s")
        return self.results

    def _want(self, n: int) -> bool:
        if n in self.na:
            for path in PATHS:
                self.add("n/a", n, path, self.na[n])
            return False
        return True

    def _scenarios(self) -> None:
        homes = [self.home(p, p) for p in PATHS]
        # 1 and 2 back to back per path (2 must come while the token is fresh).
        for h in homes:
            if 1 not in self.na:
                self.s1_first_login(h)
            if 2 not in self.na:
                self.s2_second_run(h)
        self._want(1)
        self._want(2)
        for n, fn in ((3, self.s3_refresh), (4, self.s4_concurrent)):
            if not self._want(n):
                continue
            err = self.wait_expired(homes)
            for h in homes:
                if err:
                    self.add("FAIL", n, h.path, err)
                else:
                    fn(h)
        # 5 needs the AS restarted and the tokens expired; 6 (fresh homes) runs meanwhile.
        restart_note = None
        restart_error = None
        if 5 not in self.na or 6 not in self.na:
            try:
                restart_note = self.pair.restart()
                self.read_meta()
            except Exception as e:  # noqa: BLE001
                restart_error = f"the AS restart failed: {e}"
        if self._want(6):
            for p in PATHS:
                self.s6_deny(self.home(f"{p}-deny", p))
        if self._want(5):
            err = restart_error or self.wait_expired(homes)
            for h in homes:
                if err:
                    self.add("FAIL", 5, h.path, err)
                else:
                    self.s5_restart(h, restart_note or "")
        if self._want(7):
            for h in homes:
                self.s7_logout(h)


# ---------------------------------------------------------------- the matrix


def discover(args: argparse.Namespace) -> list[Pair]:
    pairs: list[Pair] = [OidcPair(s, args.rmcp_bin) for s in OidcPair.SERVERS]
    launchers = []
    if PAIRS_DIR.is_dir():
        for d in sorted(PAIRS_DIR.iterdir()):
            f = d / "launcher"
            if f.is_file() and os.access(f, os.X_OK):
                launchers.append(f)
    launchers += [Path(p).resolve() for p in args.launcher]
    wanted = args.only or ["*"]

    def selected(as_name: str, server: str, dirname: str = "") -> bool:
        for pat in wanted:
            a, _, s = pat.partition("/")
            if (fnmatch.fnmatch(as_name, a) or (dirname and fnmatch.fnmatch(dirname, a))) and fnmatch.fnmatch(server, s or "*"):
                return True
        return False

    # Launchers first: an app-embedded AS may have long-lived tokens (Cloudflare's are at
    # least 60 s), so its pair is the longest; the short built-in pairs fill the other jobs.
    out: list[Pair] = []
    for f in launchers:
        lp = LauncherPair(f)  # runs `launcher --describe` for its names
        if selected(lp.as_name, lp.server_name, f.parent.name):
            out.append(lp)
    out += [p for p in pairs if selected(p.as_name, p.server_name)]
    return out


def component_versions(args: argparse.Namespace) -> dict[str, str]:
    v: dict[str, str] = {}
    try:
        v["mcp-oauth"] = subprocess.run([str(args.bin), "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        default = (ROOT / "target/debug/mcp-oauth").resolve()
        if args.bin != default:
            v["mcp-oauth"] += f" (--bin {args.bin})"
    except Exception as e:  # noqa: BLE001
        v["mcp-oauth"] = f"? ({e})"
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "crates"], capture_output=True, text=True, timeout=10).stdout.strip()
        v["mcp-oauth commit"] = commit + (" (crates/ modified)" if dirty else "")
        if os.environ.get("INTEROP_BIN_COMMIT"):  # the commit a --bin binary was built from
            v["mcp-oauth commit"] = os.environ["INTEROP_BIN_COMMIT"]
    except Exception:  # noqa: BLE001
        pass
    try:
        v["MCP Python SDK (proxy path's stdio client)"] = importlib.metadata.version("mcp")
    except importlib.metadata.PackageNotFoundError:
        v["MCP Python SDK (proxy path's stdio client)"] = "? (run with .deps/venv/bin/python)"
    v["browser"] = "tests/browser.sh (curl " + (subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split()[1:2] or ["?"])[0] + ")"
    return v


def write_table(path: Path, pairs: list[Pair], results: dict[str, list[Result]], components: dict[str, str], args: argparse.Namespace, elapsed: float, counts: tuple[int, int, int]) -> None:
    def cell(r: Result | None) -> str:
        """Short: the verdict and, for a FAIL, its first problem (the whole reason is in
        the Reasons section below)."""
        if r is None:
            return "—"
        text = r.reason.replace("|", "\\|").replace("\n", " ")
        if r.verdict == "PASS":
            nas = re.findall(r"(revocation|rotation) n/a", text)
            return "PASS" + (f" ({', '.join(f'{k} n/a' for k in nas)})" if nas else "")
        if r.verdict == "n/a":
            return f"n/a: {text.removeprefix('n/a: ')}"
        first = re.split(r"; | \[", text, maxsplit=1)[0]
        return f"**FAIL**: {first[:160]}"

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    passed, failed, na = counts
    lines = [
        "# Interop matrix: last run",
        "",
        "Generated by `scripts/interop` (tests/interop/run.py); do not edit by hand. "
        "What each scenario checks, and how to run it: [tests/interop/README.md](../tests/interop/README.md).",
        "",
        f"Run {now}, {elapsed:.0f} s with `--jobs {args.jobs}`, access tokens of {args.at_ttl} s: "
        f"**{passed} passed, {failed} failed, {na} n/a**.",
        "",
        "## Components",
        "",
        "| component | version |",
        "|---|---|",
    ]
    for k, v in components.items():
        lines.append(f"| {k} | {v} |")
    for p in pairs:
        vs = ", ".join(f"{k} {v}" for k, v in sorted(getattr(p, "versions", {}).items()))
        lines.append(f"| {p.key} | {vs or '?'} |")
    lines += ["", "## Summary", "", "Each cell: both paths (`call`, `proxy`) unless they differ.", ""]
    lines.append("| AS | MCP server | " + " | ".join(f"{n} {name}" for n, name in SCENARIOS) + " |")
    lines.append("|---|---|" + "---|" * len(SCENARIOS))
    for p in pairs:
        rs = results.get(p.key, [])
        cells = []
        for n, _ in SCENARIOS:
            by = {r.path: r for r in rs if r.scenario == n}
            c, x = cell(by.get("call")).split(":")[0], cell(by.get("proxy")).split(":")[0]
            cells.append(c if c == x else f"call {c}, proxy {x}")
        lines.append(f"| {p.as_name} | {p.server_name} | " + " | ".join(cells) + " |")
    lines += ["", "## Results", "", "| AS | MCP server | scenario | call | proxy |", "|---|---|---|---|---|"]
    for p in pairs:
        rs = results.get(p.key, [])
        for n, name in SCENARIOS:
            by = {r.path: r for r in rs if r.scenario == n}
            lines.append(f"| {p.as_name} | {p.server_name} | {n} {name} | {cell(by.get('call'))} | {cell(by.get('proxy'))} |")
    lines += ["", "## What the authorization servers cannot do (from their docs)", ""]
    for p in pairs:
        d = p.describe
        notes = []
        for k in ("revocation", "rotation", "restart_forgets_clients"):
            if k in d:
                notes.append(f"{k}: {d[k]}")
        for k, v in sorted((d.get("na") or {}).items()):
            notes.append(f"scenario {k}: {v}")
        if d.get("notes"):
            notes.append(str(d["notes"]))
        lines.append(f"- **{p.key}**: " + "; ".join(notes))
    lines += ["", "## Reasons", "", "Every line as the runner printed it:", "", "```"]
    for p in pairs:
        for r in sorted(results.get(p.key, []), key=lambda r: (r.scenario, PATHS.index(r.path))):
            lines.append(format_line(p, r))
    lines += ["```", ""]
    path.write_text("\n".join(lines))


def format_line(p: Pair, r: Result) -> str:
    name = dict(SCENARIOS)[r.scenario]
    return f"{r.verdict}  {p.as_name} {p.server_name} {r.scenario}-{name} {r.path} {r.reason}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", default=[], help="AS/SERVER (globs; repeatable), e.g. 'oidc-provider/*' or '*/fastmcp'")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("INTEROP_JOBS", "2")), help="pairs in parallel (default 2)")
    ap.add_argument("--bin", type=Path, default=Path(os.environ.get("INTEROP_BIN", ROOT / "target/debug/mcp-oauth")), help="the mcp-oauth binary")
    ap.add_argument("--rmcp-bin", type=Path, default=Path(os.environ.get("INTEROP_RMCP_BIN", ROOT / "target/debug/examples/rmcp_server")), help="mcp-oauth-server's rmcp example")
    ap.add_argument("--launcher", action="append", default=[], help="an extra launcher (tests/interop/CONTRACT.md), repeatable")
    ap.add_argument("--at-ttl", type=int, default=int(os.environ.get("INTEROP_AT_TTL", "8")), help="access-token lifetime asked of the ASes (s, default 8)")
    ap.add_argument("--keep-logs", action="store_true", help="keep the run's directory (logs, stores) even when everything passed")
    ap.add_argument("--logs", type=Path, help="put the run's directory here (implies --keep-logs)")
    ap.add_argument("--list", action="store_true", help="list the selected pairs and exit")
    ap.add_argument("--table", type=Path, help=f"write the markdown table here (default: {LAST_RUN.relative_to(ROOT)} on a full run only)")
    args = ap.parse_args()
    args.bin = args.bin.resolve()
    args.rmcp_bin = args.rmcp_bin.resolve()

    pairs = discover(args)
    if args.list:
        for p in pairs:
            print(f"{p.key}\t{getattr(p, 'launcher', '(built in)')}")
        return 0
    if not pairs:
        print(f"interop: no pair matches {args.only}", file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    for need in (args.bin, VENV_PY, NODE):
        if not need.exists():
            print(f"interop: {need} is missing (scripts/bootstrap; cargo build)", file=sys.stderr)
            print("0 passed, 1 failed")
            return 1

    if args.logs:
        workroot = args.logs.resolve()
        workroot.mkdir(parents=True, exist_ok=True)
        args.keep_logs = True
    else:
        workroot = Path(tempfile.mkdtemp(prefix="mcp-oauth-interop."))
    components = component_versions(args)
    say(f"interop: {len(pairs)} pairs, --jobs {args.jobs}, access tokens of {args.at_ttl} s, logs in {workroot}")
    t0 = time.monotonic()
    results: dict[str, list[Result]] = {}

    def one(i: int, p: Pair) -> tuple[Pair, list[Result]]:
        d = workroot / f"{i:02d}-{re.sub(r'[^A-Za-z0-9._-]+', '_', p.key)}"
        d.mkdir(parents=True, exist_ok=True)
        rs = PairRun(p, args, d).execute()
        rs.sort(key=lambda r: (r.scenario, PATHS.index(r.path)))
        with print_lock:
            for r in rs:
                print(format_line(p, r), flush=True)
        return p, rs

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        for p, rs in ex.map(lambda ip: one(*ip), list(enumerate(pairs))):
            results[p.key] = rs

    elapsed = time.monotonic() - t0
    allr = [r for rs in results.values() for r in rs]
    passed = sum(r.verdict == "PASS" for r in allr)
    failed = sum(r.verdict == "FAIL" for r in allr)
    na = sum(r.verdict == "n/a" for r in allr)
    table = args.table or (LAST_RUN if not args.only and not args.launcher else workroot / "last-run.md")
    write_table(table, pairs, results, components, args, elapsed, (passed, failed, na))
    keep = args.keep_logs or failed
    if not keep:
        shutil.rmtree(workroot, ignore_errors=True)
    print(f"interop: {len(pairs)} pairs in {elapsed:.0f} s; table: {table}" + (f"; logs: {workroot}" if keep else ""), flush=True)
    print(f"{na} n/a", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
