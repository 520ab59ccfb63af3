#!/usr/bin/env bash
# Runs on the AMI build instance (Packer's shell provisioner), as root.
# Installs the worker into /opt/iraas/venv (OpenVINO and onnxruntime, no torch), the ONNX model uploaded by
# Packer into /opt/iraas/models (and a model of your own beside it, if IRAAS_OWN_MODEL names one), and the
# systemd unit, disabled: the instance's user data writes /etc/iraas/worker.env and starts it.
set -euo pipefail

apt-get update -q
apt-get install -y -q python3-venv python3-pip
useradd --system --home /opt/iraas --shell /usr/sbin/nologin iraas || true
install -d -o root -g root -m 0755 /opt/iraas /opt/iraas/src
tar -xzf /tmp/iraas-src.tar.gz -C /opt/iraas/src

echo "== runtime venv (worker extra only): exactly what locks/worker.txt pins, each file checked against its hash,"
echo "   then the package itself with nothing of its own resolved (built by the lock's setuptools)"
python3 -m venv /opt/iraas/venv
/opt/iraas/venv/bin/pip install -q --require-hashes -r /opt/iraas/src/locks/worker.txt
/opt/iraas/venv/bin/pip install -q --no-deps --no-build-isolation /opt/iraas/src

echo "== the ONNX model, built and tested before the image build (make ami-inputs)"
install -d -o root -g root -m 0755 /opt/iraas/models
install -m 0644 /tmp/iraas-models/*.onnx /opt/iraas/models/
# A model of your own comes with its labels (and maybe its input settings): docs/models.md.
find /tmp/iraas-models -maxdepth 1 -type f \( -name '*.labels.txt' -o -name '*.json' \) \
  -exec install -m 0644 {} /opt/iraas/models/ \;
rm -rf /tmp/iraas-models

echo "== smoke test: the runtime venv loads the model without torch (with OpenVINO, the default runtime,"
echo "   this also leaves its compiled model in /opt/iraas/models/.openvino-cache for the workers to read)"
smoke_test() {
  IRAAS_MODEL_DIR=/opt/iraas/models /opt/iraas/venv/bin/python -c \
    "from iraas.images.model.runtime import load_classifier; load_classifier(__import__('pathlib').Path('/opt/iraas/models'))"
}
IRAAS_MODEL="" smoke_test

# IRAAS_OWN_MODEL (Packer's own_model): NAME.onnx, uploaded beside the built-in model, served instead of it.
if [ -n "${IRAAS_OWN_MODEL:-}" ]; then
  echo "== a model of your own: ${IRAAS_OWN_MODEL}, checked (its files and its graph) and warmed up like the built-in one"
  IRAAS_MODEL="${IRAAS_OWN_MODEL}" smoke_test
  # A drop-in, so that the unit stays as it is; the user data's /etc/iraas/worker.env (an EnvironmentFile,
  # read after Environment=) can still name another model, fetched from S3.
  install -d -m 0755 /etc/systemd/system/iraas-worker.service.d
  printf '[Service]\nEnvironment=IRAAS_MODEL=%s\n' "${IRAAS_OWN_MODEL}" >/etc/systemd/system/iraas-worker.service.d/model.conf
fi

install -m 0644 /tmp/iraas-worker.service /etc/systemd/system/iraas-worker.service
systemctl daemon-reload
echo "worker installed; /etc/systemd/system/iraas-worker.service is enabled by the user data at boot"
