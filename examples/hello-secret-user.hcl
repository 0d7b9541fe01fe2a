# Prints a secret that `hush create secret env SECRET_STUFF=...` stored.
# The same run as hello-secret-user.yaml, in HCL.
name  = "hello-secret-user"
image = "docker.io/library/busybox:latest"

command = <<-EOT
  echo Hello $SECRET_STUFF!
EOT

gpus = 0
