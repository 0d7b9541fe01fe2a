# Every secret type once, in HCL; all.yaml declares the same.
secret "env" "secret-stuff" {
  value = env("SECRET_STUFF") # key defaults to SECRET_STUFF
}

secret "env" "db-password" {
  key  = "DB_PASSWORD"
  from = "vault:secret/data/db#password"
}

secret "mounted" "app-config" {
  value      = file("files/app.json")
  mount_path = "/etc/app/config.json"
}

secret "ssh" "deploy-key" {
  value = file("./files/id_test")
}

secret "git-ssh" "git-key" {
  value       = file("files/id_test")
  mount_path  = "/secrets/git/key"
  known_hosts = file("files/known_hosts")
}

secret "docker" "registry" {
  username = "robot"
  password = env("REGISTRY_PASSWORD")
  server   = "ghcr.io"
  email    = "robot@example.com"
}

secret "s3" "aws" {
  config_file = "files/aws-config"
  credentials = file("files/aws-credentials")
  profile     = "test"
}

secret "gcp" "gcp-key" {
  credentials_file = "files/gcp.json"
  mount_path       = "/secrets/gcp/key.json"
}

secret "oci" "oci" {
  config   = file("files/oci-config")
  key_file = "files/oci-key"
}

secret "databricks" "databricks" {
  host  = "https://example.cloud.databricks.com"
  token = env("DATABRICKS_TOKEN")
}

secret "hf" "hf-token" {
  token = env("HF_TOKEN")
}
