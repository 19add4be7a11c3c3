"""egress_guard.packaging: each function directory becomes a bundle that deploys as it is, reproducibly."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from egress_guard.packaging import (
    FIXED_EPOCH,
    FUNCTIONS_DIR,
    PackagingError,
    build_all,
    build_bundle,
    check_requirements,
    discover_functions,
    main,
)

from tests.infra.hcl import REPO

pytestmark = pytest.mark.infra

EXPECTED_FUNCTIONS = ("ensure_nat", "replace_connector_firewalls", "notify_slack")
VENV_CACHE = REPO / ".local" / "bundle-venvs"

# What the deployment gives every function (infra/examples/single-project/main.tf), with
# harmless values: importing main.py must work with exactly this environment.
DEPLOYED_ENVIRONMENT = {
    "EGRESS_GUARD_PROJECT": "eg-demo-project",
    "EGRESS_GUARD_SELF_PRINCIPALS": "egress-guard-nat@p.iam.gserviceaccount.com",
    "EGRESS_GUARD_FINDINGS_TOPIC": "projects/eg-demo-project/topics/egress-guard-findings",  # Settings checks the project id
    "SLACK_WEBHOOK_URL": "https://hooks.slack.invalid/services/T000/B000/XXXX",
}


def _fake_functions(root: Path) -> Path:
    """A functions/ tree with one tiny function and a tiny shared package, plus junk to leave out."""
    functions = root / "functions"
    shared = functions / "egress_guard"
    (shared / "__pycache__").mkdir(parents=True)
    (shared / "tests").mkdir()
    (shared / "sub").mkdir()
    (shared / "__init__.py").write_text("")
    (shared / "greeting.py").write_text("def hello() -> str:\n    return 'hello'\n")
    (shared / "sub" / "__init__.py").write_text("")
    (shared / "__pycache__" / "greeting.cpython-311.pyc").write_bytes(b"\0junk")
    (shared / "tests" / "test_greeting.py").write_text("def test(): pass\n")
    (shared / "test_inline.py").write_text("def test(): pass\n")
    (shared / ".hidden").write_text("x")
    function = functions / "hello_world"
    (function / "__pycache__").mkdir(parents=True)
    (function / "main.py").write_text("from egress_guard.greeting import hello\n\nGREETING = hello()\n")
    (function / "requirements.txt").write_text("# pinned\nfunctions-framework==3.10.2\nPyYAML==6.0.3 ; python_version >= '3.9'\n")
    (function / "README.md").write_text("# hello_world\n")
    (function / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\0junk")
    (functions / "not_a_function").mkdir()  # no main.py: not packaged
    return functions


def _tree(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    return {
        p.relative_to(directory).as_posix(): (p.read_bytes() if p.is_file() else b"", int(p.stat().st_mtime), p.stat().st_mode)
        for p in sorted(directory.rglob("*"))
    }


# --- Behaviour on a fake function ------------------------------------------------------------------


def test_discover_functions_finds_function_dirs_with_main_py(tmp_path):
    assert discover_functions(_fake_functions(tmp_path)) == ["hello_world"]


def test_bundle_holds_the_function_and_the_shared_package_only(tmp_path):
    functions = _fake_functions(tmp_path)
    bundle = build_bundle("hello_world", tmp_path / "out", functions)
    assert bundle.files == (
        "README.md",
        "egress_guard/__init__.py",
        "egress_guard/greeting.py",
        "egress_guard/sub/__init__.py",
        "main.py",
        "requirements.txt",
    )
    assert sorted(_tree(bundle.directory)) == sorted(
        {*bundle.files, "egress_guard", "egress_guard/sub"}
    )
    with zipfile.ZipFile(bundle.zip_path) as archive:
        assert archive.namelist() == list(bundle.files)
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert (info.external_attr >> 16) & 0o777 == 0o644
    assert bundle.sha256 == hashlib.sha256(bundle.zip_path.read_bytes()).hexdigest()


def test_bundle_directory_imports_as_deployed(tmp_path):
    bundle = build_bundle("hello_world", tmp_path / "out", _fake_functions(tmp_path))
    result = subprocess.run([sys.executable, "-I", "-c", "import sys; sys.path.insert(0, '.'); import main; print(main.GREETING)"],
                            cwd=bundle.directory, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello"


def test_build_is_reproducible_byte_for_byte(tmp_path):
    functions = _fake_functions(tmp_path)
    first = build_bundle("hello_world", tmp_path / "one", functions)
    # A new checkout: every source file gets a new mtime; the bundle must not change.
    later = FIXED_EPOCH + 10_000_000
    for path in functions.rglob("*"):
        os.utime(path, (later, later))
    second = build_bundle("hello_world", tmp_path / "two", functions)
    assert first.zip_path.read_bytes() == second.zip_path.read_bytes()
    assert first.sha256 == second.sha256
    assert _tree(first.directory) == _tree(second.directory)
    assert all(mtime == FIXED_EPOCH for _, mtime, _ in _tree(first.directory).values())


def test_rebuild_in_place_replaces_stale_files(tmp_path):
    functions = _fake_functions(tmp_path)
    out = tmp_path / "out"
    build_bundle("hello_world", out, functions)
    (out / "hello_world" / "leftover.py").write_text("stale")
    again = build_bundle("hello_world", out, functions)
    assert not (again.directory / "leftover.py").exists()


def test_unpinned_requirement_is_refused(tmp_path):
    functions = _fake_functions(tmp_path)
    (functions / "hello_world" / "requirements.txt").write_text("functions-framework>=3\nslack_sdk\n")
    with pytest.raises(PackagingError) as error:
        build_bundle("hello_world", tmp_path / "out", functions)
    assert "requirements.txt:1" in str(error.value) and "requirements.txt:2" in str(error.value)
    assert not (tmp_path / "out" / "hello_world").exists(), "nothing is written for a bad function"


@pytest.mark.parametrize("line", ["name==1.0", "name[extra]==1.0", "name===1.0", "name==1.0 ; python_version<'3.12'", "  # comment"])
def test_pinned_requirement_forms_are_accepted(tmp_path, line):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(line + "\n")
    check_requirements(requirements)


def test_missing_requirements_is_a_clear_error(tmp_path):
    functions = _fake_functions(tmp_path)
    (functions / "hello_world" / "requirements.txt").unlink()
    with pytest.raises(PackagingError, match="no requirements.txt"):
        build_bundle("hello_world", tmp_path / "out", functions)


def test_a_function_file_may_not_shadow_the_shared_package(tmp_path):
    functions = _fake_functions(tmp_path)
    (functions / "hello_world" / "egress_guard").mkdir()
    (functions / "hello_world" / "egress_guard" / "greeting.py").write_text("")
    with pytest.raises(PackagingError, match="shadow"):
        build_bundle("hello_world", tmp_path / "out", functions)


def test_only_unknown_function_is_an_error(tmp_path):
    with pytest.raises(PackagingError, match="nope"):
        build_all(tmp_path / "out", _fake_functions(tmp_path), only=["nope"], echo=lambda _: None)


def test_command_line_prints_progress_and_sha256(tmp_path, capsys):
    functions = _fake_functions(tmp_path)
    assert main([str(tmp_path / "out"), "--functions-dir", str(functions)]) == 0
    printed = capsys.readouterr().out
    digest = hashlib.sha256((tmp_path / "out" / "hello_world.zip").read_bytes()).hexdigest()
    assert "packaging hello_world" in printed and f"sha256 {digest}" in printed
    assert (tmp_path / "out" / "SHA256SUMS").read_text() == f"{digest}  hello_world.zip\n"


def test_command_line_reports_errors_without_a_traceback(tmp_path, capsys):
    assert main([str(tmp_path / "out"), "--functions-dir", str(_fake_functions(tmp_path)), "--only", "nope"]) == 2
    assert "packaging failed: no functions/<name>/main.py for nope" in capsys.readouterr().err


# --- The real functions ---------------------------------------------------------------------------------


def _require_function(name: str) -> None:
    if not (FUNCTIONS_DIR / name / "main.py").is_file():
        pytest.skip(f"functions/{name}/main.py does not exist yet: nothing to package")


@pytest.mark.parametrize("name", EXPECTED_FUNCTIONS)
def test_real_bundle_is_reproducible(tmp_path, name):
    _require_function(name)
    first = build_bundle(name, tmp_path / "one")
    second = build_bundle(name, tmp_path / "two")
    assert first.zip_path.read_bytes() == second.zip_path.read_bytes()
    assert {"main.py", "requirements.txt", "egress_guard/__init__.py"} <= set(first.files)
    assert not any("__pycache__" in f or f.endswith(".pyc") or "/tests/" in f for f in first.files)


def _bundle_venv(requirements: Path) -> Path:
    """A virtualenv with exactly these requirements, cached under .local/ by their hash."""
    key = hashlib.sha256(requirements.read_bytes() + sys.version.encode()).hexdigest()[:16]
    venv = VENV_CACHE / key
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if stamp.is_file():
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True, timeout=300)
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(requirements)],
        capture_output=True, text=True, timeout=1800,
    )
    if result.returncode != 0:
        pytest.fail(f"pip could not install {requirements}:\n{result.stderr[-3000:]}")
    stamp.write_text(requirements.read_text(encoding="utf-8"), encoding="utf-8")
    return python


@pytest.mark.parametrize("name", EXPECTED_FUNCTIONS)
def test_bundle_imports_in_a_venv_built_only_from_its_requirements(tmp_path, name):
    """Catches a dependency the shared package needs but the function's requirements.txt lacks."""
    _require_function(name)
    bundle = build_bundle(name, tmp_path / "dist")
    python = _bundle_venv(bundle.directory / "requirements.txt")
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **DEPLOYED_ENVIRONMENT}
    result = subprocess.run(
        [str(python), "-s", "-c", "import main"],  # -s: no user site-packages; cwd is the bundle
        cwd=bundle.directory, env=environment, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"import main failed in dist/functions/{name}:\n{result.stderr[-3000:]}"
