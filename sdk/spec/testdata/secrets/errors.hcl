# One problem or two per secret; secrets_test.go lists them.
secret "mount" "unknown-type" {
  value = env("SECRET_STUFF")
}
secret "env" "Bad_Name" {
  value = env("SECRET_STUFF")
}
secret "env" "dup" {
  value = env("SECRET_STUFF")
}
secret "env" "dup" {
  valeu = env("SECRET_STUFF")
}
secret "docker" "no-username" {
  server   = "ghcr.io"
  password = env("REGISTRY_PASSWORD")
}
secret "gcp" "no-credentials" {
}
secret "env" "value-and-from" {
  value = env("SECRET_STUFF")
  from  = "vault:secret/data/db#password"
}
secret "s3" "config-twice" {
  config      = file("files/aws-config")
  config_file = "files/aws-config"
  credentials = file("files/aws-credentials")
}
secret "env" "unset" {
  value = env("UNSET_VAR")
}
secret "mounted" "unreadable" {
  value = file("files/missing.txt")
}
secret "git-ssh" "git-one" {
  value = file("files/id_test")
}
secret "git-ssh" "git-two" {
  value = file("files/id_test")
}
secret "env" "9lives" {
  from = "no-colon"
}
secret "hf" "not-hf" {
  token = env("NOT_HF")
}
secret "mounted" "relative" {
  value      = file("files/app.json")
  mount_path = "etc/app.json"
}
secret "oci" "oci-from" {
  from = "vault:oci"
}
secret "hf" "functions" {
  token = base64decode("aGZfeA==")
}
secret "hf" "variables" {
  token = var.token
}
secret "hf" "number" {
  token = 12345
}
secret "databricks" "host-from-env" {
  host  = env("DATABRICKS_HOST")
  token = env("DATABRICKS_TOKEN")
}
secret "env" "two-args" {
  value = env("A", "B")
}
secret "env" "labels" "three" {
}
value = "top-level"
secrets "env" "typo" {
}
secret "env" "nested" {
  value {
  }
}
secret "env" "null" {
  value = null
}
