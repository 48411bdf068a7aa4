"""A throwaway PostgreSQL cluster for the tests: initdb and postgres from the Debian package, run as the
`postgres` user when the tests run as root (PostgreSQL refuses to run as root), listening on
127.0.0.1 on a free port with its socket in its own directory, gone when the tests end."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg


def find_initdb() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return found[-1] if found else shutil.which("initdb")


@dataclass
class PostgresCluster:
    """`base`: a folder the postgres user can reach. Not under pytest's temp folder: pytest keeps
    /tmp/pytest-of-<user> at mode 0700, and resets it when any other pytest run starts."""

    base: Path
    port: int
    process: subprocess.Popen | None = None
    listen: tuple[str, ...] = ("127.0.0.1",)  # addresses it listens on (the url names the first)
    trusted: tuple[str, ...] = ()  # networks (CIDR) let in without a password besides loopback

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.listen[0]}:{self.port}/postgres"

    def start(self, initdb: str, timeout: float = 60) -> PostgresCluster:
        self.base = self.base.resolve()
        bin_dir = Path(initdb).parent
        data, sockets = self.base / "data", self.base / "sockets"
        sockets.mkdir(exist_ok=True)
        as_postgres: list[str] = []
        if os.geteuid() == 0:
            as_postgres = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.base, "postgres")
            shutil.chown(sockets, "postgres")
        if not data.exists():  # else a cluster kept from before (the benchmark keeps its data)
            subprocess.run(
                [
                    *as_postgres,
                    initdb,
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        with open(data / "pg_hba.conf", "a") as rules:
            rules.writelines(f"host all all {network} trust\n" for network in self.trusted)
        with open(self.base / "postgres.log", "ab") as log:  # the child keeps its own copy of the file
            self.process = subprocess.Popen(
                [
                    *as_postgres,
                    str(bin_dir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(self.port),
                    "-h",
                    ",".join(self.listen),
                    "-k",
                    str(sockets),
                    "-c",
                    "fsync=off",  # a test cluster: speed over durability
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.base / "postgres.log").read_text(errors="replace")[-3000:])
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                time.sleep(0.2)
        raise RuntimeError("PostgreSQL did not start")

    def stop(self, remove: bool = True) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # runuser passes SIGTERM on: postgres shuts down
            self.process.wait(timeout=60)
        if remove:
            shutil.rmtree(self.base, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """A new empty database on the server; its URL."""
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
