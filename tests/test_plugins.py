"""Plugin discovery: broken plugins, strict mode, allowlist, clashes, API versions."""
from __future__ import annotations

import sys
import textwrap
import warnings

import pytest

from dh_core import backends, plugins
from dh_core.errors import PluginError
from dh_core.plugins import DHPluginWarning


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    """Install fake distributions (a module plus its entry point) on sys.path."""

    def install(dist: str, module: str, source: str) -> None:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[dh]\n{module} = {module}\n")

    monkeypatch.syspath_prepend(str(tmp_path))
    yield install
    for name in list(sys.modules):
        if name.startswith("fakeplug"):
            del sys.modules[name]
    plugins.reset()


GOOD = """
from dh_core.backend import KernelBackend
from dh_core.plugins import BackendSpec, hookimpl

class Echo(KernelBackend):
    name = "{name}"
    host_memory = True

@hookimpl
def dh_backends():
    return [BackendSpec("{name}", Echo, api_version={version})]
"""


def names() -> set[str]:
    plugins.reset()
    return set(backends.specs())


def test_cpu_backend_is_found_through_its_entry_point():
    assert "cpu" in names()
    spec = backends.specs()["cpu"]
    assert spec.distribution == "dh-backend-cpu"
    assert backends.get("cpu").available() is True


def test_plugin_whose_import_raises_does_not_hide_cpu(fake_plugins, monkeypatch):
    monkeypatch.delenv("DH_STRICT_PLUGINS", raising=False)
    fake_plugins("fake-broken", "fakeplug_broken", "raise RuntimeError('no driver here')\n")
    with pytest.warns(DHPluginWarning, match=r"fakeplug_broken.*RuntimeError: no driver here"):
        found = names()
    assert "cpu" in found


def test_strict_mode_raises_on_a_broken_plugin(fake_plugins, monkeypatch):
    monkeypatch.setenv("DH_STRICT_PLUGINS", "1")
    fake_plugins("fake-broken", "fakeplug_broken", "import no_such_module_anywhere\n")
    with pytest.raises(PluginError, match="fakeplug_broken"):
        names()


def test_plugin_whose_hook_raises_is_skipped(fake_plugins, monkeypatch):
    monkeypatch.delenv("DH_STRICT_PLUGINS", raising=False)
    fake_plugins("fake-hook", "fakeplug_hook", """
        from dh_core.plugins import hookimpl
        @hookimpl
        def dh_backends():
            raise ValueError("bad spec")
    """)
    with pytest.warns(DHPluginWarning, match="fakeplug_hook.*dh_backends.*bad spec"):
        found = names()
    assert "cpu" in found


def test_allowlist_limits_what_loads(fake_plugins, monkeypatch):
    fake_plugins("fake-echo", "fakeplug_echo", GOOD.format(name="echo", version=(1, 0)))
    assert {"cpu", "echo"} <= names()
    monkeypatch.setenv("DH_BACKENDS", "echo")
    assert names() == {"echo"}


def test_two_backends_with_one_name_is_an_error(fake_plugins):
    fake_plugins("fake-a", "fakeplug_a", GOOD.format(name="twin", version=(1, 0)))
    fake_plugins("fake-b", "fakeplug_b", GOOD.format(name="twin", version=(1, 0)))
    with pytest.raises(PluginError, match="two plugins define backend 'twin'"):
        names()


def test_major_api_mismatch_rejects_the_plugin(fake_plugins, monkeypatch):
    monkeypatch.delenv("DH_STRICT_PLUGINS", raising=False)
    fake_plugins("fake-old", "fakeplug_old", GOOD.format(name="old", version=(0, 3)))
    fake_plugins("fake-minor", "fakeplug_minor", GOOD.format(name="newer", version=(1, 7)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = names()
    assert "old" not in found and "newer" in found
    assert any("'old' speaks API 0.3" in str(w.message) for w in caught)


def test_unknown_backend_name_is_a_device_error():
    from dh_core.errors import DeviceError

    plugins.reset()
    with pytest.raises(DeviceError, match="no backend named 'nope'.*cpu"):
        backends.get("nope")


def test_dh_backends_command_lists_cpu_beside_a_broken_plugin(fake_plugins, tmp_path):
    """The whole command, in a new process: one warning line, cpu still listed."""
    import json
    import os
    import subprocess

    fake_plugins("fake-broken", "fakeplug_broken", "raise ImportError('libfoo.so: cannot open shared object')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    env.pop("DH_STRICT_PLUGINS", None)
    env.pop("DH_BACKENDS", None)
    done = subprocess.run([sys.executable, "-m", "dh_core.cli", "backends", "--json"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    listed = {b["name"]: b for b in json.loads(done.stdout)}
    assert listed["cpu"]["available"] is True
    assert "fakeplug_broken" in done.stderr and "libfoo.so" in done.stderr
    assert "Traceback" not in done.stderr
