name    = "sweep"
image   = "python:3.12"
command = "python -c 'print(1)'"
gpus    = 1

env_variables = {
  "SEED" = 42
  MODE   = "fast"
}

secrets = []

scheduling {
  max_duration = "30m"
}
