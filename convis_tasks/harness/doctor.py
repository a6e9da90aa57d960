"""``convis doctor``: what determines ConViS numbers on this machine, and what is wrong, each problem with its fix.

Every check returns :class:`Check` records; ``convis run`` reuses :func:`model_checks` for its preflight. A check
never raises: a package that fails to import is itself the finding. Imports that print on failure or may take a
while (LLaVA-NeXT, a model's module) run in a child interpreter, so their real error is captured.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from convis_tasks.model_wrappers.manifest import inner_model
from convis_tasks.reading.annotations import load_ground_truth
from convis_tasks.reading.documents import pair_videos
from convis_tasks.reading.datafolder import (DATA_ENV, DOWNLOAD_HINT, FETCH_COMMAND, PAIR_FILE, DataNotFoundError,
                                             hub_offline, locate_data_dir, not_found_message, resolve_rankings,
                                             scan_videos)
from convis_tasks.video.cache import default_cache_dir

OK, INFO, WARN, FAIL = "ok", "info", "warn", "FAIL"

LMMS_EVAL_TESTED = "0.7.3"
LLAVA_MODELS = ("llava_onevision", "llava_vid", "llava",  # lmms-eval models that need LLaVA-NeXT's `llava`
                "convis_llava_onevision", "convis_llava_vid")  # and their expected-score subclasses
LLAVA_TRANSFORMERS_MAX = (4, 56)  # LLaVA-NeXT's `llava` imports with transformers up to 4.55.x
LLAVA_COMMIT = "df179663ae8b83207df100a1f7af24caec633ff9"  # the LLaVA-NeXT commit the tests run (../shared/vendor)
LLAVA_INSTALL = (f"pip install --no-deps 'llava @ git+https://github.com/LLaVA-VL/LLaVA-NeXT@{LLAVA_COMMIT}' "
                 "'transformers<4.56'")
TORCHVISION_MODELS = ("qwen2_5_vl", "qwen2_vl", "qwen3_vl", "llava_hf")  # HF video processors want torchvision
CACHE_MIN_FREE = 2 * 1024 ** 3  # bytes; the benchmark's pair clips take well under this
# bytes one pair clip may take: 16 lossless frames of a 1080p source (a 360p clip of the release is about 4 MB);
# a cache with less free space cannot hold the next clip, and the run would fail at its first request
ONE_CLIP_BYTES = 64 * 1024 ** 2


@dataclass(frozen=True)
class Check:
    """One finding: ``status`` is ok / info / warn / FAIL (FAIL blocks a run); ``fix`` says what to do."""

    name: str
    status: str
    detail: str
    fix: str = ""

    @property
    def blocks(self) -> bool:
        return self.status == FAIL


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _module_version(name: str) -> str | None:
    """The version of the module that ``import name`` gives (its ``__version__``, else its distribution's)."""
    module = importlib.import_module(name)
    version = getattr(module, "__version__", None)
    if version is None:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None
    return str(version)


def last_error_line(text: str) -> str:
    """The last ``SomeError: ...`` line of a traceback (else the last non-empty line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Exit")) and " " not in head:
            return line
    return lines[-1] if lines else "(no output)"


_SWALLOWED = re.compile(r"^Failed to import (?P<what>\S+) from \S+?\.? Error: (?P<error>.+)$")
# huggingface_hub's http_backoff logs this line before each retry of a request that failed
_HUB_RETRY = re.compile(r"thrown while requesting (?P<method>[A-Z]+) (?P<url>\S+)")
OFFLINE_ENV = "HF_HUB_OFFLINE"


@dataclass(frozen=True)
class ChildImport:
    """How importing ran in a fresh interpreter: the error line (None: it ran), the wall time, and the hub requests
    that huggingface_hub retried meanwhile (``METHOD url``, in order, repeats kept)."""

    error: str | None
    seconds: float
    hub_retries: tuple[str, ...] = ()


def run_import_child(statements: str, timeout: float = 600.0, env: dict[str, str] | None = None) -> ChildImport:
    """Run ``statements`` in a fresh interpreter (this environment, updated with ``env``) and time it.

    LLaVA-NeXT's ``llava/model/__init__.py`` prints "Failed to import <model> ... Error: <the real error>" and goes
    on, so the import fails later with a misleading message; when such lines were printed, they are the error.
    """
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-c", statements], capture_output=True, text=True, timeout=timeout,
                              check=False, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired as exc:
        output = "\n".join(o.decode(errors="replace") if isinstance(o, bytes) else (o or "")
                           for o in (exc.stdout, exc.stderr))
        return ChildImport(f"importing took more than {timeout:.0f} s", time.monotonic() - started,
                           _hub_retries(output))
    seconds = time.monotonic() - started
    retries = _hub_retries(proc.stdout + "\n" + proc.stderr)
    if proc.returncode == 0:
        return ChildImport(None, seconds, retries)
    swallowed = [m for line in proc.stdout.splitlines() if (m := _SWALLOWED.match(line.strip()))]
    if swallowed:
        return ChildImport("; ".join(f"{m.group('what')}: {m.group('error')}" for m in swallowed[:2]), seconds,
                           retries)
    return ChildImport(last_error_line(proc.stderr or proc.stdout), seconds, retries)


def _hub_retries(output: str) -> tuple[str, ...]:
    return tuple(f"{m.group('method')} {m.group('url')}" for m in _HUB_RETRY.finditer(output))


def import_in_child(statements: str, timeout: float = 600.0) -> str | None:
    """:func:`run_import_child`'s error line: None if the statements ran."""
    return run_import_child(statements, timeout).error


def hub_retry_check(what: str, statements: str, outcome: ChildImport) -> Check | None:
    """A warning when importing ``what`` spent its time retrying the Hugging Face hub (a machine without hub
    access, ``HF_HUB_OFFLINE`` unset): the import is timed again with ``HF_HUB_OFFLINE=1`` to say what the fix saves.
    None when nothing was retried."""
    if not outcome.hub_retries:
        return None
    first = outcome.hub_retries[0]
    detail = (f"importing {what} took {outcome.seconds:.1f} s, retrying the Hugging Face hub "
              f"{len(outcome.hub_retries)} time(s) (first: {first})")
    if not hub_offline():
        offline = run_import_child(statements, env={OFFLINE_ENV: "1"})
        detail += f"; with {OFFLINE_ENV}=1 it takes {offline.seconds:.1f} s" + (
            f" but fails: {offline.error}" if offline.error and not outcome.error else "")
    return Check("hub access", WARN, detail,
                 f"export {OFFLINE_ENV}=1 on a machine that cannot reach the hub (models and data then load from "
                 "the local Hugging Face cache only)")


# --- the software stack -----------------------------------------------------------------------------------

def check_python() -> Check:
    return Check("python", OK, f"{platform.python_version()} ({sys.executable})")


def check_torch() -> list[Check]:
    """torch and its accelerator; the GPUs it sees."""
    try:
        import torch
    except Exception as exc:  # noqa: BLE001 - a broken install is the finding
        return [Check("torch", FAIL, f"does not import: {type(exc).__name__}: {exc}",
                      "pip install -e '.[harness]' (installs torch; see the README's Install table)")]
    cuda = torch.version.cuda
    build = f"CUDA {cuda} build" if cuda else "CPU-only build"
    checks = [Check("torch", OK, f"{torch.__version__} ({build})")]
    try:
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception as exc:  # noqa: BLE001
        count, cuda_error = 0, f"{type(exc).__name__}: {exc}"
    else:
        cuda_error = ""
    if count:
        names = [torch.cuda.get_device_name(i) for i in range(count)]
        checks.append(Check("GPUs", OK, f"{count}: {', '.join(names)}"))
    else:
        why = f" ({cuda_error})" if cuda_error else ""
        checks.append(Check("GPUs", INFO, f"none usable{why}: models run on the CPU (slow for 7B video LMMs)"))
    return checks


def check_torchvision() -> Check:
    """Transformers' video processors need a torchvision whose C++ ops match torch (``ops.nms`` runs)."""
    try:
        import torch
        import torchvision

        torchvision.ops.nms(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([1.0]), 0.5)
    except Exception as exc:  # noqa: BLE001
        return Check("torchvision", WARN, f"not usable: {type(exc).__name__}: {str(exc)[:200]}",
                     "pip install torchvision built for your torch (same version line and index as torch); "
                     f"needed by the HF video processors of {', '.join(TORCHVISION_MODELS)}")
    return Check("torchvision", OK, f"{torchvision.__version__} (torchvision.ops.nms runs)")


def check_transformers(llava_wanted: bool = False) -> Check:
    """transformers' version; a warning where LLaVA-NeXT is installed or ``llava_wanted`` and it is 4.56 or newer."""
    try:
        version = _module_version("transformers")
    except Exception as exc:  # noqa: BLE001
        return Check("transformers", WARN, f"does not import: {type(exc).__name__}: {exc}",
                     "pip install 'transformers<4.56' (needed by every HF model)")
    llava = llava_wanted or importlib.util.find_spec("llava") is not None
    if llava and version and _version_tuple(version) >= LLAVA_TRANSFORMERS_MAX:
        return Check("transformers", WARN, f"{version}: LLaVA-NeXT's llava imports only with transformers < 4.56",
                     "pip install 'transformers<4.56' (the version this project locks is 4.55.4)")
    return Check("transformers", OK, str(version))


def check_lmms_eval() -> Check:
    try:
        version = importlib.metadata.version("lmms_eval")
    except importlib.metadata.PackageNotFoundError:
        return Check("lmms-eval", FAIL, "not installed", "pip install -e '.[harness]' (installs lmms-eval 0.7.3)")
    if version != LMMS_EVAL_TESTED:
        return Check("lmms-eval", WARN, f"{version}: the plugin is tested with {LMMS_EVAL_TESTED}",
                     f"pip install 'lmms-eval=={LMMS_EVAL_TESTED}'")
    return Check("lmms-eval", OK, version)


def check_filelock() -> Check:
    """lmms-eval 0.7.3 imports ``filelock._api`` at the start of every evaluation; filelock 4.3 removed it."""
    try:
        version = _module_version("filelock")
        has_api = importlib.util.find_spec("filelock._api") is not None
    except Exception as exc:  # noqa: BLE001
        return Check("filelock", FAIL, f"does not import: {type(exc).__name__}: {exc}", "pip install 'filelock<4.3'")
    if not has_api:
        return Check("filelock", FAIL, f"{version}: has no filelock._api, which lmms-eval 0.7.3 imports at every run "
                     "(every run dies with ModuleNotFoundError and exits 0)", "pip install 'filelock<4.3'")
    return Check("filelock", OK, str(version))


def check_decoders() -> list[Check]:
    """decord and PyAV: PyAV is needed (probes, native clips, MPEG-TS/PS sources); decord, when present, reads
    MP4/MOV, Matroska/WebM and AVI sources of the RGB path and the harness models' clips."""
    found = {}
    for name in ("decord", "av"):
        try:
            found[name] = _module_version(name)
        except Exception as exc:  # noqa: BLE001
            found[name] = None
            found[name + "_error"] = f"{type(exc).__name__}: {exc}"
    checks = []
    for name, label in (("decord", "decord"), ("av", "PyAV")):
        if found[name] is not None:
            checks.append(Check(label, OK, found[name]))
        else:
            checks.append(Check(label, INFO, f"not usable ({found[name + '_error'][:160]})"))
    if found["av"] is None:
        checks.append(Check("video decoder", FAIL, "PyAV does not import: no video can be probed or clipped",
                            "pip install av"))
    else:
        used = "decord (MP4/MOV, Matroska/WebM, AVI) and PyAV" if found["decord"] is not None else "PyAV"
        checks.append(Check("video decoder", OK, f"frames are read with {used}"))
    return checks


def check_llava(required: bool = False) -> Check:
    """Whether LLaVA-NeXT's ``llava`` imports, with the real ImportError.

    ``llava/model/__init__.py`` catches the error and prints "Failed to import ..."; lmms-eval then fails later with a
    misleading ``NameError``. Importing the language-model module directly raises the real error.
    """
    if importlib.util.find_spec("llava") is None:
        status = FAIL if required else INFO
        return Check("llava (LLaVA-NeXT)", status, f"not installed (needed only for {', '.join(LLAVA_MODELS)})",
                     LLAVA_INSTALL if required else "")
    error = import_in_child("import llava.model.language_model.llava_qwen, llava.model.builder, llava.mm_utils")
    if error:
        return Check("llava (LLaVA-NeXT)", FAIL if required else WARN, f"does not import: {error}",
                     f"{LLAVA_INSTALL} (llava_onevision and llava_vid need it)")
    return Check("llava (LLaVA-NeXT)", OK, "imports")


# --- the data and the clip cache ------------------------------------------------------------------------

def check_data() -> list[Check]:
    """The data folder: where it is, the pairs it holds, the videos missing, the retrieval rankings. It never
    fetches (``convis data fetch`` and ``convis run`` do)."""
    try:
        location = locate_data_dir()
        if location is None:
            raise DataNotFoundError(not_found_message(hint=False))
        root = location.path
        truth = load_ground_truth(root / PAIR_FILE)
    except Exception as exc:  # noqa: BLE001 - the loaders' messages name the file
        return [Check("data", FAIL, str(exc), DOWNLOAD_HINT)]
    wanted = pair_videos(truth)
    videos = sorted(wanted)
    scan = scan_videos(root, {v: wanted[v] for v in videos})
    source = location.source + (f": {location.detail}" if location.detail else "")
    checks = [Check("data", OK, f"{root} (from {source}): {len(truth.pairs)} pairs, {len(videos)} videos")]
    if scan.problems:
        bad = scan.missing
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        checks.append(Check("videos", FAIL, f"{len(bad)} of {len(videos)} missing under {root}: {shown}",
                            f"put the videos under {root} (for the Hugging Face cache: `{FETCH_COMMAND}`) or "
                            f"point {DATA_ENV} at the folder that holds them"))
    else:
        checks.append(Check("videos", OK, f"all {len(videos)} found"))
    try:
        checks.append(Check("rankings", OK, f"{resolve_rankings(root)} (retrieval tasks)"))
    except Exception as exc:  # noqa: BLE001
        checks.append(Check("rankings", INFO, f"{exc} (needed only by the convis_retrieval tasks)"))
    return checks


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def write_probe(folder: Path) -> OSError | None:
    """Make ``folder`` if needed and write and remove one file there; the error if that fails, else None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".convis-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return exc
    return None


def check_cache() -> Check:
    """The pair-clip cache: writable, and its free space."""
    folder = default_cache_dir()
    fix = "set CONVIS_CACHE_DIR to a writable folder with a few GB free"
    if (exc := write_probe(folder)) is not None:
        return Check("clip cache", FAIL, f"{folder} is not writable: {exc}", fix)
    free = shutil.disk_usage(_existing_parent(folder)).free
    detail = f"{folder}: writable, {free / 1024 ** 3:.1f} GiB free"
    if free < ONE_CLIP_BYTES:
        return Check("clip cache", FAIL, f"{folder}: {free / 1024 ** 2:.0f} MiB free, less than one pair clip "
                     f"needs ({ONE_CLIP_BYTES // 1024 ** 2} MiB)", fix)
    if free < CACHE_MIN_FREE:
        return Check("clip cache", WARN, detail + f" (under {CACHE_MIN_FREE / 1024 ** 3:.0f} GiB)", fix)
    return Check("clip cache", OK, detail)


# --- a model ---------------------------------------------------------------------------------------------

def model_class_path(model: str) -> str | None:
    """The class path lmms-eval would load for ``--model model`` (None: unknown to lmms-eval)."""
    from lmms_eval.models import MODEL_REGISTRY_V2

    try:
        manifest = MODEL_REGISTRY_V2.get_manifest(model)
    except Exception:  # noqa: BLE001 - unknown name
        return None
    return manifest.chat_class_path or manifest.simple_class_path


def model_names() -> list[str]:
    from lmms_eval.models import list_available_models

    return list_available_models(include_aliases=True)


def model_checks(model: str, model_args: str | None = None, import_module: bool = True) -> list[Check]:
    """Whether ``--model model`` can be loaded here: known to lmms-eval, its packages importable."""
    try:
        path = model_class_path(model)
    except Exception as exc:  # noqa: BLE001
        return [Check("model", FAIL, f"lmms-eval's model registry does not load: {type(exc).__name__}: {exc}",
                      "pip install -e '.[harness]'")]
    if path is None:
        close = difflib.get_close_matches(model, model_names(), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        return [Check("model", FAIL, f"lmms-eval has no model named {model!r}{hint}",
                      "`lmms-eval models` lists the names")]
    checks = []
    llava = check_llava(required=True) if model in LLAVA_MODELS else None
    if import_module:
        module, _, cls = path.rpartition(".")
        statements = f"import importlib; getattr(importlib.import_module({module!r}), {cls!r})"
        outcome = run_import_child(statements)
        if outcome.error:
            checks.append(Check(f"model {model}", FAIL, f"{path}: {outcome.error}",
                                "install the package named in the error"))
        elif llava is not None and llava.blocks:  # lmms-eval's module imports without llava, the model cannot load
            checks.append(Check(f"model {model}", FAIL, f"{path} imports in {outcome.seconds:.1f} s but cannot "
                                f"load a model: LLaVA-NeXT's llava {llava.detail.split(' (')[0]}", llava.fix))
        else:
            checks.append(Check(f"model {model}", OK, f"{path} imports in {outcome.seconds:.1f} s"))
        retried = hub_retry_check(f"model {model}", statements, outcome)
        checks += [retried] if retried else []
    if llava is not None:
        checks.append(llava)
    if model in TORCHVISION_MODELS:
        tv = check_torchvision()
        checks.append(tv if tv.status == OK else Check(tv.name, FAIL, tv.detail, tv.fix))
    inner = inner_model(model, model_args)
    if inner:
        checks += model_checks(inner, None, import_module)
    return checks


# --- the command -----------------------------------------------------------------------------------------

def run_doctor(model: str | None = None, model_args: str | None = None) -> list[Check]:
    """Every check, in the order they are printed."""
    checks = [check_python(), *check_torch(), check_torchvision(), check_transformers(model in LLAVA_MODELS),
              check_lmms_eval(), check_filelock(), *check_decoders()]
    model_found = model_checks(model, model_args) if model else []
    if not any(c.name.startswith("llava") for c in model_found):  # a LLaVA model's checks hold the llava line
        checks.append(check_llava())
    checks += model_found
    checks += [*check_data(), check_cache()]
    return checks


def format_checks(checks: list[Check]) -> str:
    """One line per check, ``fix:`` under each problem, and a closing verdict."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status:<4}  {c.name:<{width}}  {c.detail}")
        if c.fix and c.status in (WARN, FAIL):
            lines.append(f"{'':<4}  {'':<{width}}  fix: {c.fix}")
    blocking = [c.name for c in checks if c.blocks]
    warned = [c.name for c in checks if c.status == WARN]
    if blocking:
        lines.append(f"convis doctor: {len(blocking)} problem(s) block a run: {', '.join(blocking)}")
    else:
        extra = f" ({len(warned)} warning(s): {', '.join(warned)})" if warned else ""
        lines.append(f"convis doctor: nothing blocks a run{extra}")
    return "\n".join(lines)


def doctor_command(args: argparse.Namespace) -> int:
    """``convis doctor``: print every check; exit status 1 when one blocks a run."""
    checks = run_doctor(args.model, args.model_args)
    print(format_checks(checks))
    return 1 if any(c.blocks for c in checks) else 0
