"""The image's pins agree with each other: the Dockerfile's base is docker/BASE_IMAGE.lock's
digest, its version label is the package's, and the locks it installs carry hashes.
(Building and running the image is `nox -s container`.)"""

import re
import tomllib
from pathlib import Path

from advisor_repro import __version__

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def arg_default(name: str) -> str:
    return re.search(rf"^ARG {name}=(.*)$", DOCKERFILE, re.MULTILINE).group(1).strip('"')


def test_base_image_is_the_locked_digest():
    lock = dict(
        line.split("=", 1)
        for line in (ROOT / "docker/BASE_IMAGE.lock").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", lock["DIGEST"])
    assert arg_default("BASE_IMAGE") == f"{lock['TAG']}@{lock['DIGEST']}"
    assert lock["TAG"].startswith("nvidia/cuda:12.6.") and "runtime-ubuntu" in lock["TAG"]


def test_version_label_is_the_package_version():
    assert arg_default("VERSION") == __version__


def test_installed_locks_pin_every_package_by_hash():
    for name in ("build", "nodeps", "cpu"):
        text = (ROOT / f"docker/requirements-{name}.lock").read_text()
        pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+) \\$", text, re.MULTILINE)
        assert pins, name
        blocks = re.split(r"^(?=[A-Za-z0-9._-]+==)", text, flags=re.MULTILINE)[1:]
        assert len(blocks) == len(pins)
        assert all("--hash=sha256:" in block for block in blocks), name


def test_cpu_lock_holds_every_pin_of_pyproject():
    """A pin bumped in pyproject.toml without `docker/lock.sh` would make the image drift."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["smoke"]]
    cpu = (ROOT / "docker/requirements-cpu.lock").read_text().lower().replace("_", "-")
    for req in wanted:
        if "==" in req:
            assert f"\n{req.lower().replace('_', '-')} \\" in cpu, f"{req}: run docker/lock.sh"
    assert "\ntorch==2.13.0+cpu \\" in cpu
