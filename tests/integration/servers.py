"""Start and stop private server processes on loopback for tests and the benchmark.

Each server gets its own config and data directory and a free port, so tests can stop and restart
it (broker restart, InfluxDB outage) without touching any system service.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout_s: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout_s: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status in (200, 204)
    except OSError:
        return False


def find_binary(name: str, *extra: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for candidate in extra:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


@dataclass
class ServerProcess:
    """A server started by us: restartable on the same port and data directory."""

    name: str
    argv: list[str]
    workdir: Path
    port: int
    ready_check: str  # "tcp" or an URL
    proc: subprocess.Popen | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def ready(self) -> bool:
        if self.ready_check == "tcp":
            return port_open(LOOPBACK, self.port)
        return http_ok(self.ready_check)

    def start(self, timeout_s: float = 20.0) -> ServerProcess:
        if self.proc is not None and self.proc.poll() is None:
            return self
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the process lifetime
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; log: {self.tail_log()}"
                )
            if self.ready():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not answer on port {self.port} within {timeout_s} s; log: {self.tail_log()}"
        )

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        deadline = time.monotonic() + 5
        while port_open(LOOPBACK, self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail_log(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def mosquitto(
    workdir: Path, port: int | None = None, extra_conf: str = "", allow_anonymous: bool = True
) -> ServerProcess:
    """A private Mosquitto with persistence (so persistent sessions survive a restart)."""
    binary = find_binary("mosquitto", "/usr/sbin/mosquitto")
    if binary is None:
        raise FileNotFoundError("mosquitto not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} {LOOPBACK}\n"
        f"allow_anonymous {'true' if allow_anonymous else 'false'}\n"
        "persistence true\n"
        f"persistence_location {workdir}/\n"
        "autosave_interval 1\n"
        "max_queued_messages 1000000\n"
        "max_inflight_messages 1000\n"
        f"user {getpass.getuser()}\n"  # as root, mosquitto would switch to 'mosquitto' and not write here
        "log_dest stdout\n"
        "log_type error\nlog_type warning\n" + extra_conf
    )
    return ServerProcess("mosquitto", [binary, "-c", str(conf)], workdir, port, "tcp")


def influxd(workdir: Path, port: int | None = None) -> ServerProcess:
    """A private InfluxDB 1.x (Debian's ``influxdb``) with its own config and data directory."""
    binary = find_binary("influxd", "/usr/bin/influxd")
    if binary is None:
        raise FileNotFoundError("influxd not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = workdir / "influxdb.conf"
    conf.write_text(
        "reporting-enabled = false\n"
        f'bind-address = "{LOOPBACK}:{free_port()}"\n'
        f'[meta]\n  dir = "{workdir}/meta"\n'
        f'[data]\n  dir = "{workdir}/data"\n  wal-dir = "{workdir}/wal"\n  query-log-enabled = false\n'
        "[monitor]\n  store-enabled = false\n"
        f'[http]\n  bind-address = "{LOOPBACK}:{port}"\n  log-enabled = false\n'
        "[continuous_queries]\n  enabled = false\n"
    )
    return ServerProcess(
        "influxd",
        [binary, "run", "-config", str(conf)],
        workdir,
        port,
        f"http://{LOOPBACK}:{port}/ping",
    )


def victoria_metrics(workdir: Path, port: int | None = None) -> ServerProcess:
    """A private VictoriaMetrics: implements InfluxDB's ``/api/v2/write`` and ``/write``."""
    binary = find_binary("victoria-metrics", "/usr/bin/victoria-metrics")
    if binary is None:
        raise FileNotFoundError("victoria-metrics not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    argv = [
        binary,
        f"-httpListenAddr={LOOPBACK}:{port}",
        f"-storageDataPath={workdir}/data",
        "-retentionPeriod=100y",
        "-search.latencyOffset=0s",
        "-loggerLevel=ERROR",
    ]
    return ServerProcess(
        "victoria-metrics", argv, workdir, port, f"http://{LOOPBACK}:{port}/health"
    )


# --------------------------------------------------------------------------- Dask
@dataclass
class DaskCluster:
    """A ``dask scheduler`` and named ``dask worker`` processes (each with its nanny, in its own
    process group) started by us on loopback."""

    address: str
    workdir: Path
    scheduler: subprocess.Popen
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker's process group (nanny and worker): a machine lost."""
        proc = self.workers[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        for proc in [*self.workers.values(), self.scheduler]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()

    def log(self, name: str) -> str:
        try:
            return (self.workdir / f"{name}.log").read_text(errors="replace")[-1500:]
        except OSError:
            return ""


def _spawn_python(argv: list[str], log: Path, pythonpath: Path) -> subprocess.Popen:
    import sys

    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.Popen(
        [sys.executable, *argv],
        stdout=open(log, "ab"),  # noqa: SIM115 - kept open for the process lifetime
        stderr=subprocess.STDOUT,
        cwd=log.parent,
        env=env,
        start_new_session=True,
    )


def dask_cluster(
    workdir: Path, worker_names: tuple[str, ...] = ("wa", "wb"), timeout_s: float = 90.0
) -> DaskCluster:
    """Start a scheduler on a free loopback port and one single-threaded worker process per name;
    return once all have joined. Raises RuntimeError (with the log tail) if they do not."""
    from distributed import Client

    repo = Path(__file__).resolve().parents[2]
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    address = f"tcp://{LOOPBACK}:{port}"
    sched = _spawn_python(
        ["-m", "distributed.cli.dask_scheduler", "--host", LOOPBACK, "--port", str(port),
         "--no-dashboard", "--no-show"],
        workdir / "scheduler.log",
        repo,
    )  # fmt: skip
    cluster = DaskCluster(address, workdir, sched)
    try:
        deadline = time.monotonic() + timeout_s
        while not port_open(LOOPBACK, port):
            if sched.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dask scheduler did not start: {cluster.log('scheduler')}")
            time.sleep(0.1)
        for name in worker_names:
            cluster.workers[name] = _spawn_python(
                ["-m", "distributed.cli.dask_worker", address, "--name", name, "--nthreads", "1",
                 "--nworkers", "1", "--no-dashboard", "--memory-limit", "0", "--host", LOOPBACK,
                 "--local-directory", str(workdir / name)],
                workdir / f"{name}.log",
                repo,
            )  # fmt: skip
        with Client(address, timeout=f"{int(timeout_s)}s") as client:
            try:
                client.wait_for_workers(len(worker_names), timeout=timeout_s)
            except TimeoutError:
                raise RuntimeError(
                    f"dask workers did not join: {cluster.log(worker_names[0])}"
                ) from None
    except BaseException:
        cluster.stop()
        raise
    return cluster
