# Several problems at once, command missing among them.
name  = "ok-name"
image = ["not", "a", "string"]
gpus  = -1

compute {
  cpus     = "lots"
  memory   = "4GB"
  instance = "a100"
}

env_variables = {
  "9LIVES" = "x"
}

secrets = ["Bad_Name"]

scheduling {
  max_duration = 0
}
