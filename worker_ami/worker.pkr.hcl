# The app-tier worker AMI: the iraas worker, its ONNX model and a systemd unit, on Ubuntu 24.04.
#   make ami-inputs && packer build -var region=us-east-1 worker_ami/worker.pkr.hcl   (repo root)
# Then deploy with WorkerAmiId set to the AMI id it prints. The model is built into the image, so an
# instance takes requests seconds after boot; the user data only hands it the stack's resource names.

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "instance_type" {
  type        = string
  default     = "c7i.large"
  description = "Build instance; the ONNX export needs about 2 GB of memory."
}

variable "source_tree" {
  type        = string
  default     = "build/ami/iraas-src.tar.gz"
  description = "The repository as `git archive` writes it (make ami-inputs)."
}

variable "model_dir" {
  type        = string
  default     = "build/ami/models/"
  description = "The ONNX model built by `iraas model build` (make ami-inputs): the tested file, no torch on the instance."
}

source "amazon-ebs" "worker" {
  region        = var.region
  instance_type = var.instance_type
  ssh_username  = "ubuntu"
  ami_name      = "iraas-worker-{{timestamp}}"
  source_ami_filter {
    filters = {
      name                = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["099720109477"] # Canonical
    most_recent = true
  }
  tags = {
    "iraas:component" = "worker"
  }
}

build {
  sources = ["source.amazon-ebs.worker"]

  provisioner "file" {
    source      = var.source_tree
    destination = "/tmp/iraas-src.tar.gz"
  }

  provisioner "file" {
    source      = var.model_dir
    destination = "/tmp/iraas-models"
  }

  provisioner "file" {
    source      = "worker_ami/iraas-worker.service"
    destination = "/tmp/iraas-worker.service"
  }

  provisioner "shell" {
    script          = "worker_ami/install.sh"
    execute_command = "chmod +x {{ .Path }}; sudo -E {{ .Path }}"
  }
}
