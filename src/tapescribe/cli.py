"""The command line: a thin layer over the same Settings, Runtime and app the server uses."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from tapescribe.config import Settings

_COMMON = [
    click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Data directory (default ./data, or TAPESCRIBE_DATA_DIR).",
    ),
    click.option(
        "--model",
        default=None,
        help="Model for jobs that name none: auto (tiny.en for English, base otherwise), a model name, "
        "or a model directory (default auto, or TAPESCRIBE_MODEL).",
    ),
]


def common_options(function):
    for option in reversed(_COMMON):
        function = option(function)
    return function


def make_settings(**overrides) -> Settings:
    """Settings from the environment, with the flags that were given on top."""
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except Exception as error:
        raise click.ClickException(f"Invalid settings: {error}") from error


@click.group()
@click.version_option(package_name="tapescribe")
def main() -> None:
    """tapescribe: self-hosted speech-to-text that keeps your audio and transcripts."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8000).")
@click.option(
    "--workers", type=int, default=None, help="Embedded job worker threads (default 3, or TAPESCRIBE_WORKERS)."
)
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    default=None,
    help="Listen on a non-loopback address without TAPESCRIBE_API_KEY (something else must check access).",
)
@common_options
def serve(host, port, workers, insecure_no_auth, data_dir, model) -> None:
    """Run the HTTP API and web UI with an embedded job worker."""
    from tapescribe.api.security import allowed_host_names, is_loopback
    from tapescribe.app import create_app
    from tapescribe.serving import run_server

    settings = make_settings(
        host=host, port=port, workers=workers, insecure_no_auth=insecure_no_auth, data_dir=data_dir, model=model
    )
    from tapescribe.sessions.users import UserStore

    with_users = UserStore(settings.data_dir).enabled()
    if (
        not is_loopback(settings.host)
        and not settings.api_key_value()
        and not with_users
        and not settings.insecure_no_auth
    ):
        raise click.ClickException(
            f"refusing to listen on {settings.host} without a key: anyone who can reach that address could "
            "read, download and delete every recording. Set TAPESCRIBE_API_KEY (browsers then sign in on a "
            "login page; scripts send 'Authorization: Bearer <key>'), listen on 127.0.0.1 behind your own "
            "proxy, or pass --insecure-no-auth if something in front of tapescribe already checks who comes in."
        )
    app = create_app(settings)
    hosts = "any" if "*" in settings.allowed_hosts else ", ".join(sorted(allowed_host_names(settings)))
    click.echo(
        f"tapescribe on http://{settings.host}:{settings.port}  data: {settings.data_dir}  "
        f"key: {'required' if settings.api_key_value() or with_users else 'none'}"
        f"{'  users: on' if with_users else ''}  host names served: {hosts}",
        err=True,
    )
    run_server(app, settings, on_stop=app.state.runtime.begin_stop)


@main.command()
@click.option("--workers", type=int, default=1, show_default=True, help="Worker threads in this process.")
@common_options
def worker(workers, data_dir, model) -> None:
    """Run job workers against the same queue as `serve` (more throughput, or another machine)."""
    from tapescribe.runtime import STOP_GRACE_SECONDS, Runtime

    runtime = Runtime(make_settings(data_dir=data_dir, model=model, workers=workers))
    runtime.start_takeover()  # a worker takes over the jobs of dead workers too, not only `serve`
    try:
        runtime.queue.run_workers_forever(workers, runtime.begin_stop, STOP_GRACE_SECONDS)
    finally:
        runtime.stop()  # jobs stop at their next model call (waited for a few seconds) and resume later


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--language", default=None, help="Language code; detected on the audio when not given.")
@click.option(
    "--format", "fmt", type=click.Choice(["txt", "srt", "vtt", "json", "tsv"]), default="txt", show_default=True
)
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write FILE-stem.FORMAT here instead of printing.",
)
@click.option(
    "--model",
    default=None,
    help="Model, as an upload names it (default auto: tiny.en for English, base for other languages).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory, for its model cache and scratch files (default ./data, or TAPESCRIBE_DATA_DIR); "
    "no session is stored.",
)
def transcribe(files, language, fmt, output_dir, model, data_dir) -> None:
    """Transcribe files locally, without a server, as an upload's job would (same model choice and decoding)."""
    from tapescribe.errors import TapescribeError
    from tapescribe.jobs.pipeline import AudioInput, TranscriptionPipeline
    from tapescribe.runtime import decode_scheduler, job_settings, model_pool, prepare_process
    from tapescribe.sessions.exports import render

    settings = make_settings(data_dir=data_dir)
    prepare_process(settings)
    pipeline = TranscriptionPipeline(model_pool(settings), job_settings(settings))
    request = pipeline.request(model, language)  # an English-only model for another language: the API's 400
    scheduler = decode_scheduler(settings)
    failed = 0
    for path in files:
        try:
            audio = AudioInput(path)
            with click.progressbar(length=1000, label=path.name, file=sys.stderr) as bar:
                length = audio.duration() or 1.0

                def show(seconds: float, bar=bar, length=length) -> None:
                    bar.update(max(0, min(1000, int(1000 * seconds / length)) - bar.pos))

                transcript = pipeline.transcribe(audio, request, scheduler, show)
                bar.update(1000 - bar.pos)
        except TapescribeError as error:
            click.echo(f"{path}: {error.message}", err=True)
            failed += 1
            continue
        click.echo(f"{path.name}: {transcript.model} ({transcript.model_reason})", err=True)
        if transcript.warning():
            click.echo(f"{path.name}: warning: {transcript.warning()}", err=True)
        output = render(transcript.record(), fmt, {"source_file": str(path), "duration": transcript.duration})
        if output_dir:
            output_dir.mkdir(parents=True, exist_ok=True)
            (output_dir / f"{path.stem}.{fmt}").write_text(output, encoding="utf-8")
        else:
            click.echo(output)
    if failed:
        raise SystemExit(1)


@main.command()
@common_options
def reindex(data_dir, model) -> None:
    """Rebuild the index (SQLite, or PostgreSQL where index_url names one) from the session directories."""
    from tapescribe.errors import IndexUnavailable
    from tapescribe.runtime import Runtime

    try:
        runtime = Runtime(make_settings(data_dir=data_dir, model=model))
    except IndexUnavailable as error:
        raise click.ClickException(error.message) from error
    count = runtime.reindexed if runtime.reindexed is not None else runtime.sessions.index_sync.reindex()
    runtime.sessions.index.close()
    click.echo(f"indexed {count} session(s)")


@main.command()
@common_options
def models(data_dir, model) -> None:
    """List the models that can be used here."""
    from tapescribe.runtime import model_pool

    pool = model_pool(make_settings(data_dir=data_dir, model=model))
    if pool.pinned is None:
        click.echo("* auto\tEnglish: tiny.en, other languages: base (requested, or detected on the audio)")
    for entry in pool.offered():
        marker = "*" if entry["id"] == pool.pinned else " "
        languages = "multilingual" if entry["multilingual"] else "English only"
        click.echo(f"{marker} {entry['id']}\t{entry['source']}\t{languages}")


@main.group()
def sessions() -> None:
    """List, show, export or delete stored sessions."""


def _runtime(data_dir):
    from tapescribe.runtime import Runtime

    return Runtime(make_settings(data_dir=data_dir))


_data_dir_option = click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)


@sessions.command("list")
@click.option("--limit", type=int, default=50, show_default=True)
@_data_dir_option
def sessions_list(limit, data_dir) -> None:
    listing = _runtime(data_dir).sessions.listing(limit=limit)
    for row in listing["sessions"]:
        duration = f"{row['duration']:.1f}s" if row["duration"] else "-"
        click.echo(f"{row['id']}  {row['created'][:19]}  {row['status']:<10} {duration:>8}  {row['title']}")


@sessions.command("show")
@click.argument("session_id")
@_data_dir_option
def sessions_show(session_id, data_dir) -> None:
    click.echo(json.dumps(_runtime(data_dir).sessions.get(session_id), indent=1, ensure_ascii=False))


@sessions.command("export")
@click.argument("session_id")
@click.option("--format", "fmt", type=click.Choice(["txt", "srt", "vtt", "json", "tsv"]), default="txt")
@_data_dir_option
def sessions_export(session_id, fmt, data_dir) -> None:
    from tapescribe.sessions.exports import render

    service = _runtime(data_dir).sessions
    click.echo(render(service.transcription(session_id), fmt, service.session(session_id)), nl=False)


@sessions.command("delete")
@click.argument("session_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_data_dir_option
def sessions_delete(session_id, yes, data_dir) -> None:
    service = _runtime(data_dir).sessions
    session = service.session(session_id)
    if not yes:
        click.confirm(f"Delete {session.get('title')!r} with its audio and transcript?", abort=True)
    service.delete(session_id)
    click.echo(f"deleted {session_id}")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--verify", is_flag=True, help="Check an archive against its manifest instead of writing one.")
@_data_dir_option
def backup(file, verify, data_dir) -> None:
    """Write the whole library to FILE (a tar; .tar.gz compresses; - for standard output) while the server
    keeps serving, or with --verify check that an archive is whole."""
    from tapescribe.sessions import backup as backups

    if verify:
        with click.open_file(str(file), "rb") as stream:
            manifest = _backup_call(backups.verify, stream)
        click.echo(f"ok: {len(manifest['files'])} file(s) of {manifest['sessions']} session(s) match the manifest")
        return
    settings = make_settings(data_dir=data_dir)
    if not settings.sessions_dir.is_dir():
        raise click.ClickException(f"{settings.data_dir} holds no library (no sessions directory).")
    locks = _write_locks(settings)
    gzip = str(file).endswith((".gz", ".tgz"))
    if str(file) == "-":
        summary = backups.write_backup(settings.data_dir, sys.stdout.buffer, locks, gzip=False)
    else:
        partial = file.with_name(file.name + ".partial")  # the archive appears whole or not at all
        with open(partial, "wb") as out:
            summary = backups.write_backup(settings.data_dir, out, locks, gzip=gzip)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, file)
    click.echo(f"backed up {summary.sessions} session(s), {summary.files} file(s), {summary.bytes} bytes", err=True)


def _write_locks(settings):
    """The per-session write lock every change takes (flock, or Redis with the Redis queue)."""
    from tapescribe.runtime import session_locks
    from tapescribe.sessions.store import SessionStore

    return session_locks(settings, SessionStore(settings.sessions_dir, settings.incoming_dir)).write


def _backup_call(function, *args, **kwargs):
    from tapescribe.sessions.backup import BackupError

    try:
        return function(*args, **kwargs)
    except BackupError as error:
        raise click.ClickException(error.message) from error


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--force",
    is_flag=True,
    help="Restore into a data directory that is not empty (its files are kept, the archive's replace theirs).",
)
def restore(file, data_dir, force) -> None:
    """Rebuild a library from a backup FILE into an empty data directory, then rebuild its index."""
    from tapescribe.runtime import Runtime
    from tapescribe.sessions import backup as backups

    manifest = _backup_call(backups.restore, lambda: open(file, "rb"), data_dir, force)
    runtime = Runtime(make_settings(data_dir=data_dir))
    count = runtime.reindexed if runtime.reindexed is not None else runtime.sessions.index_sync.reindex()
    runtime.sessions.index.close()
    click.echo(f"restored {len(manifest['files'])} file(s); indexed {count} session(s)")


@main.command()
@click.argument("query")
@_data_dir_option
def search(query, data_dir) -> None:
    """Search all transcripts."""
    for result in _runtime(data_dir).sessions.search(query):
        click.echo(f"{result['id']}  {result['title']}")
        for segment in result["segments"]:
            click.echo(f"    {segment['start']:8.2f}s  {segment['text']}")


def _add_users_group() -> None:
    from tapescribe.cli_users import users

    main.add_command(users)


_add_users_group()


def run() -> None:
    from tapescribe.errors import TapescribeError

    try:
        main(standalone_mode=True)
    except TapescribeError as error:
        click.echo(f"error: {error.message}", err=True)
        raise SystemExit(2) from error
