"""Static checks of ``ansible/`` and the ``Vagrantfile``: no host is touched.

- every playbook passes ``ansible-playbook --syntax-check`` with both inventories;
- ``ansible-lint --profile production`` passes on ``ansible/``;
- ``vagrant validate`` passes (Debian's vagrant has no provider plugin here, hence
  ``--ignore-provider``), while a Vagrantfile with a misspelt provisioner setting
  fails it, so the check is not vacuous;
- a variable of the wrong type stops ``site.yml`` in its first play, which checks
  every role's ``meta/argument_specs.yml``, before any task could change a host.

The playbooks themselves run on systemd hosts in ``test_deploy.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
VENV_BIN = REPO / ".venv" / "bin"
PLAYBOOKS = ("site.yml", "operator-init.yml", "operator-unseal.yml", "rolling-restart.yml")
INVENTORIES = ("vagrant", "containers")
GROUPS = ("consul_servers", "strongroom_nodes", "loadbalancers", "monitoring")


def _ansible_env() -> dict[str, str]:
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env or _ansible_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_every_playbook_passes_syntax_check(inventory):
    done = _run(
        [str(VENV_BIN / "ansible-playbook"), "--syntax-check", "-i", f"inventories/{inventory}", *PLAYBOOKS],
        cwd=ANSIBLE,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for playbook in PLAYBOOKS:
        assert f"playbook: {playbook}" in done.stdout


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_both_inventories_have_the_four_groups(inventory):
    done = _run([str(VENV_BIN / "ansible-inventory"), "-i", f"inventories/{inventory}", "--graph"], cwd=ANSIBLE)
    assert done.returncode == 0, done.stderr
    for group in GROUPS:
        assert re.search(rf"--@{group}:\n[\s|]+--\w", done.stdout), f"{group} empty or missing:\n{done.stdout}"


def test_ansible_lint_production_profile_passes():
    done = _run([str(VENV_BIN / "ansible-lint"), "--offline", "--profile", "production", "--nocolor", "."], cwd=ANSIBLE)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "Passed" in done.stdout + done.stderr


def _vagrant_validate(directory: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "vagrant-home"
    home.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "VAGRANT_HOME": str(home),
        "VAGRANT_DOTFILE_PATH": str(tmp_path / "dot-vagrant"),  # not .vagrant/ in the work tree
        "VAGRANT_CHECKPOINT_DISABLE": "1",
    }
    return _run(["vagrant", "validate", "--ignore-provider"], cwd=directory, env=env, timeout=120)


def test_vagrant_validate_passes_and_would_catch_a_bad_setting(tmp_path):
    done = _vagrant_validate(REPO, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validated successfully" in done.stdout

    broken = tmp_path / "broken"
    broken.mkdir()
    text = (REPO / "Vagrantfile").read_text()
    (broken / "Vagrantfile").write_text(
        text.replace('ansible.limit = "all"', 'ansible.limit = "all"\n        ansible.limt = "x"')
    )
    done = _vagrant_validate(broken, tmp_path)
    assert done.returncode != 0
    assert "limt" in done.stdout + done.stderr


def test_vagrantfile_provisions_every_machine_from_the_last_one_with_site_yml():
    text = (REPO / "Vagrantfile").read_text()
    names = re.findall(r"\{ name: \"([\w-]+)\",\s+ip: \"192\.168\.56\.\d+\"", text)
    assert len(names) == 5
    assert re.search(r"next unless index == MACHINES\.length - 1\s+host\.vm\.provision \"ansible\"", text)
    assert 'ansible.limit = "all"' in text
    playbook = re.search(r'ansible\.playbook = "([^"]+)"', text).group(1)
    inventory = re.search(r'ansible\.inventory_path = "([^"]+)"', text).group(1)
    assert (REPO / playbook).is_file() and playbook == "ansible/site.yml"
    assert (REPO / inventory).is_dir() and inventory == "ansible/inventories/vagrant"
    done = _run([str(VENV_BIN / "ansible-inventory"), "-i", inventory, "--list"], cwd=REPO)
    assert done.returncode == 0, done.stderr
    for name in names:  # every machine is in the vagrant inventory, under the same name
        assert f'"{name}"' in done.stdout


def _local_inventory(tmp_path: Path) -> Path:
    """127.0.0.1 in every group, over the local connection, as a user without sudo."""
    groups = "\n".join(f"    {group}: {{hosts: {{127.0.0.1: {{}}}}}}" for group in GROUPS)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    127.0.0.1:\n      ansible_connection: local\n      ansible_become: false\n"
        f"      ansible_python_interpreter: {VENV_BIN / 'python'}\n"
        f"      strongroom_secrets_dir: {tmp_path / 'secrets'}\n"
        f"  children:\n{groups}\n"
    )
    return inventory


def _validate_only(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """site.yml limited to its validation (tag ``validate``; the roles' own argument
    checks are tagged ``always``), in check mode, against this machine."""
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(_local_inventory(tmp_path)), "--check", "--tags", "validate"]
    return _run([*argv, *extra, "site.yml"], cwd=ANSIBLE, timeout=120)


def test_site_yml_validation_passes_with_the_defaults(tmp_path):
    done = _validate_only(tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert re.search(r"127\.0\.0\.1\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", done.stdout)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("strongroom_workers", "abc", "unable to convert to int"),
        ("strongroom_tls", "maybe", "unable to convert to bool"),
        ("consul_install_method", "curl-pipe-bash", "must be one of"),
        ("haproxy_timeouts", "30s", "unable to convert to dict"),
        ("prometheus_consul_groups", {"a": 1}, "unable to convert to list"),
    ],
)
def test_a_wrong_variable_fails_in_the_first_play_before_any_change(tmp_path, variable, value, says):
    done = _validate_only(tmp_path, "-e", json.dumps({variable: value}))
    output = done.stdout + done.stderr
    assert done.returncode != 0
    errors = re.findall(r"Validation of arguments failed:\n(.*)", output)
    assert errors and variable in errors[0] and says in errors[0], output[-3000:]
    # The failure is the first play's argument check; no later play started.
    first_play = output.split("PLAY [")[1]
    assert first_play.startswith("Validate every role's variables before anything changes]")
    assert "PLAY [Facts and cluster addresses" not in output
    assert re.search(r"127\.0\.0\.1\s*:\s*ok=0\s+changed=0\s+unreachable=0\s+failed=1", output), output[-2000:]
