"""The classroom's cloud-init user-data and seed script, checked without a VM (no root).

What a booted VM proves is `sudo make vm-test MC_VM_CLOUDINIT=1`; these are the mistakes that
would only show there, after minutes of boot: user-data that is not YAML or is too big for a
cloud, an embedded script with a syntax error, settings the seed script cannot fill in or fills
in unquoted, a service that listens beyond the loopback on a cloud VM.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
CLOUD_INIT = ROOT / "vagrant" / "cloud-init.yaml"
SEED = ROOT / "vagrant" / "cloud-seed.sh"


def user_data(text):
    assert text.startswith("#cloud-config\n"), "cloud-init ignores user-data without this first line"
    return yaml.safe_load(text)


def setting(doc, name):
    env = next(f for f in doc["write_files"] if f["path"] == "/etc/minicontainer/cloud.env")
    out = subprocess.run(["bash", "-c", f'set -eu; {env["content"]}\necho "${name}"'],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_user_data_is_cloud_config_small_enough_for_every_cloud():
    text = CLOUD_INIT.read_text()
    doc = user_data(text)
    assert set(doc) >= {"write_files", "runcmd"}
    assert len(text.encode()) < 16 * 1024, "AWS refuses user-data over 16 KB"
    assert doc["runcmd"] == [["/usr/local/sbin/minicontainer-cloud-setup"]]
    assert setting(doc, "MC_SOURCE") == "seed"
    assert setting(doc, "MC_KIT") == ""


def test_embedded_setup_script_is_valid_bash_and_runs_provision_on_loopback(tmp_path):
    doc = user_data(CLOUD_INIT.read_text())
    script = next(f for f in doc["write_files"] if f["path"] == "/usr/local/sbin/minicontainer-cloud-setup")
    assert script["permissions"] == "0755"
    body = script["content"]
    assert body.startswith("#!/bin/bash\n")
    path = tmp_path / "setup.sh"
    path.write_text(body)
    subprocess.run(["bash", "-n", str(path)], check=True)
    # the same provisioning as `vagrant up`, JupyterLab on the VM's loopback only
    assert 'bash "$SRC/vagrant/provision.sh"' in body
    assert "MC_LAB_IP=127.0.0.1" in body
    # the heredoc's terminator survived YAML's indentation stripping
    assert "\nPY\n" in body


def test_service_binds_where_provision_says():
    unit = (ROOT / "vagrant" / "jupyterlab.service").read_text()
    assert "--ip=@IP@" in unit and "0.0.0.0" not in unit.split("ExecStart=")[1].splitlines()[0]
    prov = (ROOT / "vagrant" / "provision.sh").read_text()
    assert 's|@IP@|$MC_LAB_IP|g' in prov and "MC_LAB_IP=${MC_LAB_IP:-0.0.0.0}" in prov


def run_seed(tmp_path, **env):
    full = {"PATH": os.environ["PATH"], **env}
    return subprocess.run(["bash", str(SEED), str(tmp_path / "out"), "user-data-only"],
                          capture_output=True, text=True, env=full)


def test_seed_fills_in_settings_quoted(tmp_path):
    url = "https://bucket.example/minicontainer.tar.gz?X-Sig=a&b=c|d"
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample learner@laptop\n")
    r = run_seed(tmp_path, MC_SOURCE=url, MC_KIT="http://10.0.0.5:8000", MC_SSH_KEY=str(key))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "out" / "user-data").read_text()
    doc = user_data(text)
    assert setting(doc, "MC_SOURCE") == url      # & and | survived sed and the shell
    assert setting(doc, "MC_KIT") == "http://10.0.0.5:8000"
    assert doc["ssh_authorized_keys"] == ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample learner@laptop"]
    meta = yaml.safe_load((tmp_path / "out" / "meta-data").read_text())
    assert meta["instance-id"].startswith("minicontainer-lab-") and meta["local-hostname"]


@pytest.mark.parametrize("bad", ["ftp://x/y.tar.gz", "http://x/a b", "http://x/'$(reboot)'", "/tmp/x.tar.gz"])
def test_seed_refuses_what_it_cannot_write_safely(tmp_path, bad):
    r = run_seed(tmp_path, MC_SOURCE=bad)
    assert r.returncode == 1
    assert r.stderr.startswith("cloud-seed: FAILED: ") and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "user-data").exists()


def test_seed_refuses_a_private_key(tmp_path):
    key = tmp_path / "id"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    r = run_seed(tmp_path, MC_SSH_KEY=str(key))
    assert r.returncode == 1 and "not a public key" in r.stderr


@pytest.mark.skipif(shutil.which("genisoimage") is None, reason="genisoimage not installed")
def test_seed_image_is_a_nocloud_volume(tmp_path):
    r = subprocess.run(["bash", str(SEED), str(tmp_path / "out")], capture_output=True, text=True,
                       env={"PATH": os.environ["PATH"]})
    assert r.returncode == 0, r.stderr
    iso = (tmp_path / "out" / "seed.iso").read_bytes()
    # ISO 9660 primary volume descriptor at sector 16: the volume id cloud-init looks for
    pvd = iso[16 * 2048:17 * 2048]
    assert pvd[1:6] == b"CD001" and pvd[40:72].decode().strip() == "cidata"


def test_guest_package_list_is_what_provision_reads():
    pkgs = [p for line in (ROOT / "vagrant" / "guest-packages.txt").read_text().splitlines()
            if not line.startswith("#") for p in line.split()]
    assert "python3-venv" in pkgs and "skopeo" in pkgs and len(pkgs) == len(set(pkgs))
    assert 'grep -v \'^#\' "$MC_SRC/vagrant/guest-packages.txt"' in (ROOT / "vagrant" / "provision.sh").read_text()
    assert "guest-packages.txt" in (ROOT / "vagrant" / "classroom-kit.sh").read_text()

