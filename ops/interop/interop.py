#!/usr/bin/env python3
"""The reference Java clients for the interop tests: Apache Avro and kafka-clients, run as a
foreign producer or frontend would (``tests/interop``, ``docs/producers.md``).

``fetch`` resolves the jars pinned in ``ops/interop/pom.xml`` with Maven into a lib dir (as
``ops/kafka/local_kafka.py`` does for the broker); :func:`harness` compiles
``ops/interop/java`` with ``javac`` into a classes dir when a source is newer; :func:`run`
runs one command of ``labeltrail.interop.Interop`` and returns its stdout.

Usage::

    python ops/interop/interop.py fetch       # jars into var/interop/lib (no-op when there)
    python ops/interop/interop.py build       # fetch, then javac the harness
    python ops/interop/interop.py run fingerprint schemas/avro
    python ops/interop/interop.py fetch-registry   # Apicurio Registry into var/interop/apicurio
    python ops/interop/interop.py registry 8081    # run one (in-memory) until Ctrl-C

State lives under ``LABELTRAIL_INTEROP_HOME`` (default ``<repo>/var/interop``): ``lib/``,
``classes/``, ``apicurio/``. Standard library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
POM = HERE / "pom.xml"
SOURCES = HERE / "java"
MAIN = "labeltrail.interop.Interop"
ENV_HOME = "LABELTRAIL_INTEROP_HOME"
JVM_OPTS = ["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]

sys.path.insert(0, str(HERE.parent / "kafka"))
from local_kafka import _require_java, _require_mvn  # noqa: E402  (ops is not a package)


class InteropError(RuntimeError):
    """The Java side could not be fetched, compiled or run; the message says why."""


def home() -> Path:
    env = os.environ.get(ENV_HOME)
    return Path(env).resolve() if env else REPO_ROOT / "var" / "interop"


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One fetch or compile at a time across processes (pytest-xdist workers)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _digest(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _javac() -> str:
    java_home = os.environ.get("JAVA_HOME")
    javac = str(Path(java_home) / "bin" / "javac") if java_home else None
    if not javac or not os.access(javac, os.X_OK):
        javac = shutil.which("javac") or str(Path(_require_java()).resolve().parent / "javac")
    if not os.access(javac, os.X_OK):
        raise InteropError("javac not found (on Debian: apt-get install openjdk-17-jdk-headless)")
    return javac


def _mvn_output(proc: subprocess.CompletedProcess[str]) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", (proc.stdout + proc.stderr).strip())[-6000:]


def fetch(root: Path | None = None) -> Path:
    """The jars of ``pom.xml`` in ``<home>/lib`` (fetched once per pom.xml content)."""
    root = root or home()
    lib, marker = root / "lib", root / "lib" / ".fetched"
    want = _digest([POM])
    with _locked(root):
        if marker.is_file() and marker.read_text().strip() == want:
            return lib
        staging = root / "lib.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [_require_mvn(), "-B", "-q", "-f", str(POM), "dependency:copy-dependencies"]
        cmd.append(f"-Dinterop.lib.dir={staging}")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not any(staging.glob("avro-*.jar")):
            raise InteropError(f"Maven could not fetch the interop jars:\n{_mvn_output(proc)}")
        (staging / ".fetched").write_text(want + "\n")
        shutil.rmtree(lib, ignore_errors=True)
        staging.rename(lib)
    return lib


def harness(root: Path | None = None) -> str:
    """The classpath of the compiled harness and its jars (compiled when sources changed)."""
    root = root or home()
    lib = fetch(root)
    classes = root / "classes"
    sources = sorted(SOURCES.rglob("*.java"))
    want = _digest(sources)
    classpath = f"{classes}{os.pathsep}{lib / '*'}"
    with _locked(root):
        marker = classes / ".compiled"
        if marker.is_file() and marker.read_text().strip() == want:
            return classpath
        staging = root / "classes.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [_javac(), "-d", str(staging), "-cp", str(lib / "*"), *map(str, sources)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise InteropError(f"javac failed:\n{proc.stdout}{proc.stderr}")
        (staging / ".compiled").write_text(want + "\n")
        shutil.rmtree(classes, ignore_errors=True)
        staging.rename(classes)
    return classpath


def run(*args: str, stdin: str = "", timeout: float = 120.0) -> str:
    """Run ``Interop <args>`` with ``stdin``; its stdout, or InteropError with its stderr."""
    cmd = [_require_java(), *JVM_OPTS, "-cp", harness(), MAIN, *args]
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd, input=stdin, capture_output=True, text=True, check=False, timeout=timeout
    )
    if proc.returncode != 0:
        raise InteropError(
            f"{' '.join(args[:1])} exited {proc.returncode} after {time.monotonic() - t0:.1f}s:\n"
            f"{proc.stderr[-6000:]}"
        )
    return proc.stdout


# --------------------------------------------------------------------------------------------
# A schema registry: Apicurio Registry from Maven Central, in-memory storage


APICURIO = "io.apicurio:apicurio-registry-app:2.6.13.Final:tar.gz:all"
"""Apicurio Registry's own distribution (a Quarkus runner jar and its lib/), published to
Maven Central beside the app: Apache-2.0, no Docker, an in-memory (H2) store by default, and
a Confluent-compatible API under ``/apis/ccompat/v7``."""
CCOMPAT = "/apis/ccompat/v7"


def fetch_registry(root: Path | None = None) -> Path:
    """The unpacked Apicurio distribution under ``<home>/apicurio`` (fetched once)."""
    root = root or home()
    target = root / "apicurio"
    version = APICURIO.split(":")[2]
    with _locked(root):
        if (target / ".fetched").is_file() and (target / ".fetched").read_text().strip() == version:
            return target
        download = root / "download"
        cmd = [_require_mvn(), "-B", "-q", "-f", str(POM)]
        cmd += ["org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy"]
        cmd += [f"-Dartifact={APICURIO}", f"-Dinterop.lib.dir={download}"]  # the copy goes there
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        archives = sorted(download.glob("apicurio-registry-app-*.tar.gz"))
        if proc.returncode != 0 or not archives:
            raise InteropError(f"Maven could not fetch {APICURIO}:\n{_mvn_output(proc)}")
        staging = root / "apicurio.partial"
        shutil.rmtree(staging, ignore_errors=True)
        with tarfile.open(archives[-1]) as tar:
            tar.extractall(staging, filter="data")
        (staging / ".fetched").write_text(version + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        shutil.rmtree(download, ignore_errors=True)
    return target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/subjects", timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def registry(port: int = 0, timeout: float = 120.0) -> Iterator[str]:
    """A fresh in-memory registry on 127.0.0.1 for the ``with`` block; yields its
    Confluent-compatible URL, and ends the process it started (by its id) afterwards."""
    dist = fetch_registry()
    runner = next(dist.glob("apicurio-registry-app-*-runner.jar"))
    port = port or _free_port()
    log = home() / f"apicurio-{port}.log"
    cmd = [_require_java(), "-Xmx512m", *JVM_OPTS[1:], f"-Dquarkus.http.port={port}"]
    cmd += ["-Dquarkus.http.host=127.0.0.1", "-jar", str(runner)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=dist, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}{CCOMPAT}"
    try:
        deadline = time.monotonic() + timeout
        while not _answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise InteropError(f"Apicurio Registry did not start on port {port}:\n{tail}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["fetch"]:
            print(fetch())
        elif argv[:1] == ["build"]:
            print(harness())
        elif argv[:1] == ["fetch-registry"]:
            print(fetch_registry())
        elif argv[:1] == ["registry"]:  # in the foreground until Ctrl-C
            with registry(int(argv[1]) if len(argv) > 1 else 8081) as url:
                print(url, flush=True)
                while True:
                    time.sleep(3600)
        elif argv[:1] == ["run"] and len(argv) > 1:
            sys.stdout.write(run(*argv[1:], stdin="" if sys.stdin.isatty() else sys.stdin.read()))
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except InteropError as exc:
        print(f"[interop] {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
