# Every field; the same run as full.yaml.
name    = "train-model"
image   = "ghcr.io/example/trainer:1.2"
command = <<-EOT
  python train.py --epochs 3
EOT

compute {
  gpus    = 2
  cpus    = 7.5
  memory  = "16Gi"
  cluster = "gpu-a"
}

env_variables = {
  LOG_LEVEL = "info"
  WORKERS   = 4
  DEBUG     = false
}

secrets = ["hf-token", "wandb"]

scheduling {
  max_duration = 1.5 # hours, as in mcli
}
