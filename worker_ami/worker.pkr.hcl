# The app-tier worker AMI: the iraas worker, its ONNX model and a systemd unit, on Ubuntu 24.04.
#   make ami-inputs && packer build -var region=us-east-1 worker_ami/worker.pkr.hcl   (repo root)
# Then deploy with WorkerAmiId set to the AMI id it prints. The model is built into the image, so an
# instance takes requests seconds after boot; the user data only hands it the stack's resource names.
# A model of your own: make ami OWN_MODEL=/path/to/NAME.onnx (bakes it in beside the built-in one and
# serves it), or deploy with WorkerModelS3Uri and WorkerModelSha256 (fetched at each worker's start).

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

variable "own_model" {
  type        = string
  default     = ""
  description = "A model of your own to bake in and serve, alongside the built-in one: NAME.onnx in model_dir, with NAME.labels.txt and optionally NAME.json beside it (make ami-inputs OWN_MODEL=/path/to/NAME.onnx puts them there). Empty: the workers serve the built-in model."
  validation {
    condition     = var.own_model == "" || (length(var.own_model) > 5 && substr(var.own_model, -5, -1) == ".onnx" && length(split("/", var.own_model)) == 1)
    error_message = "The own_model variable is a file name in model_dir ending in .onnx, or empty."
  }
}

variable "source_ami_name" {
  type        = string
  default     = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20260714"
  description = "Canonical's Ubuntu 24.04 image the worker AMI starts from, by its exact dated name (not the newest of a pattern), so that two builds of one commit start from the same image; its python3 (3.12) is what locks/worker.txt is resolved for. Moving it forward: docs/deploy-aws.md#locks."
  validation {
    condition     = regex_replace(var.source_ami_name, "^ubuntu/images/[a-z0-9-]+/ubuntu-noble-24[.]04-amd64-server-[0-9]{8}([.][0-9]+)?$", "") == ""
    error_message = "The source_ami_name variable is one exact, dated Ubuntu 24.04 (noble) amd64 server image name: locks/worker.txt is resolved for its Python 3.12."
  }
}

source "amazon-ebs" "worker" {
  region        = var.region
  instance_type = var.instance_type
  ssh_username  = "ubuntu"
  ami_name      = "iraas-worker-{{timestamp}}"
  source_ami_filter {
    filters = {
      name                = var.source_ami_name
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners = ["099720109477"] # Canonical
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
    script           = "worker_ami/install.sh"
    environment_vars = ["IRAAS_OWN_MODEL=${var.own_model}"]
    execute_command  = "chmod +x {{ .Path }}; sudo -E {{ .Path }}"
  }
}
